"""User errors: one line and exit status 2 in every eg-* tool, the traceback only with --verbose (issue 15, fault 6)."""

from __future__ import annotations

import pytest

from eg_train.foundation.data import DataError, DataSpec, load_split
from eg_train.foundation.errors import ConfigError, UserError, find_user_error, run_main, split_verbose


def test_run_main_prints_the_message_alone(capsys):
    def fn(args):
        raise DataError("data.csv: row 3 (line 5): empty or whitespace-only text")

    assert run_main(fn, "eg-x", ["a"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["eg-x: error: data.csv: row 3 (line 5): empty or whitespace-only text (run with --verbose for the traceback)"]


def test_verbose_adds_the_traceback_and_is_not_passed_on(capsys, monkeypatch):
    monkeypatch.delenv("EG_TRAIN_VERBOSE", raising=False)
    seen = []

    def fn(args):
        seen.append(args)
        raise ConfigError("prior.on_missing must be one of ['error', 'skip'], got 'skpi'")

    assert run_main(fn, "eg-x", ["fit", "--verbose", "--a=1"]) == 2
    assert seen == [["fit", "--a=1"]]
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().splitlines()[-1].startswith("eg-x: error: prior.on_missing")
    assert split_verbose(["x"]) == (["x"], False)
    monkeypatch.setenv("EG_TRAIN_VERBOSE", "1")
    assert split_verbose(["x"]) == (["x"], True)


def test_bugs_keep_their_traceback_and_success_returns_the_status():
    def bug(args):
        raise KeyError("internal")

    with pytest.raises(KeyError):
        run_main(bug, "eg-x", [])
    assert run_main(lambda a: None, "eg-x", []) == 0
    assert run_main(lambda a: 3, "eg-x", []) == 3


def test_wrapped_user_errors_and_tool_error_types(capsys):
    class ToolError(RuntimeError):
        pass

    def wrapped(args):
        try:
            raise DataError("f.csv: no data rows")
        except DataError as err:
            raise RuntimeError("a library wrapped it") from err

    assert run_main(wrapped, "eg-x", []) == 2
    assert "f.csv: no data rows" in capsys.readouterr().err
    assert run_main(lambda a: (_ for _ in ()).throw(ToolError("bad cache")), "eg-x", [], user_errors=lambda: (ToolError,)) == 2
    assert "eg-x: error: bad cache" in capsys.readouterr().err
    assert find_user_error(FileNotFoundError(2, "No such file", "x.csv")) is not None
    assert issubclass(DataError, UserError) and issubclass(DataError, ValueError)
    from priors.cache import PriorCacheError

    assert issubclass(PriorCacheError, UserError) and issubclass(PriorCacheError, RuntimeError)


def test_header_only_file_says_no_data_rows(tmp_path):
    """Was: 'f.csv: could not be read as csv: Instruction "train" corresponds to no data!'."""
    for name, content in [("h.csv", "text,label\n"), ("blank.csv", ""), ("e.jsonl", "\n")]:
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        with pytest.raises(DataError, match=rf"{name}: no data rows"):
            load_split(DataSpec(files={"train": str(path)}), "train")


def _one_error_line(err: str, prog: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("Generating ")]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: ")
    return lines[0]


def test_eg_priors_and_eg_eval_report_user_errors_in_one_line(tmp_path, capsys):
    from eg_train.evaluation.cli import main as eval_main
    from priors.cli import main as priors_main

    empty = tmp_path / "empty.csv"
    empty.write_text("text,category\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        priors_main(["compute", "--data.files", f"{{train: {empty}}}", "--data.label_column", "category",
                     "--cache_dir", str(tmp_path / "cache")])
    assert exit_.value.code == 2
    assert "no data rows" in _one_error_line(capsys.readouterr().err, "eg-priors")
    missing = tmp_path / "missing.csv"
    with pytest.raises(SystemExit) as exit_:
        eval_main(["attack", "--data.files", f"{{train: {missing}, test: {missing}}}", "--out", str(tmp_path / "att")])
    assert exit_.value.code == 2
    assert "file not found" in _one_error_line(capsys.readouterr().err, "eg-eval")
