import base64
import json
import re

import numpy as np
import pytest

from eg_train.evaluation.evaluate import EvalConfig, evaluate_checkpoint
from eg_train.evaluation.report import (
    aggregate,
    load_runs,
    model_heatmaps,
    sample_attack_pairs,
    saved_heatmaps,
    write_report,
)
from eg_train.foundation.words import split_words


def _run(method, acc, adv, comp, seed):
    return {"method": method, "seed": seed, "dataset": {"fingerprint": "f"},
            "clean": {"accuracy": acc, "macro_f1": acc - 0.01, "confused_pairs": []},
            "attacks": {"keyword_addition": {"accuracy": adv, "drop": acc - adv}},
            "faithfulness": {"comprehensiveness": comp, "sufficiency": 0.1}}


def test_aggregate_mean_and_sample_std():
    runs = [_run("ce", 0.90, 0.70, 0.4, 0), _run("ce", 0.92, 0.74, 0.5, 1), _run("ce", 0.94, 0.72, 0.6, 2),
            _run("cap", 0.93, 0.85, 0.7, 0)]
    methods, metrics, table = aggregate(runs)
    assert methods == ["ce", "cap"]
    assert metrics[:2] == ["accuracy", "macro_f1"] and "keyword_addition/drop" in metrics
    mean, std, n = table["ce"]["accuracy"]
    assert (mean, n) == (pytest.approx(0.92), 3) and std == pytest.approx(np.std([0.90, 0.92, 0.94], ddof=1))
    assert table["ce"]["keyword_addition/drop"][0] == pytest.approx(np.mean([0.20, 0.18, 0.22]))
    assert table["cap"]["accuracy"] == (pytest.approx(0.93), 0.0, 1)


def test_runs_on_different_test_sets_are_refused(tmp_path):
    for i, fp in enumerate(["a", "b"]):
        d = tmp_path / str(i)
        d.mkdir()
        r = _run("ce", 0.9, 0.8, 0.5, i)
        r["dataset"]["fingerprint"] = fp
        (d / "metrics.json").write_text(json.dumps(r))
    with pytest.raises(ValueError, match="different test sets"):
        load_runs([tmp_path / "0", tmp_path / "1"])
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        load_runs([tmp_path / "missing"])


def test_report_end_to_end(tmp_path_factory, checkpoint, train_split, test_split, attack_dir, evaluated):
    base = tmp_path_factory.mktemp("rep")
    att = attack_dir
    dirs = [evaluated[0]]
    for method, seed in [("ce", 1), ("ce-no-faith", 0)]:
        d = base / f"{method}-{seed}"
        evaluate_checkpoint(checkpoint, test_split, d, att, method=method, run_seed=seed,
                            config=EvalConfig(faithfulness_examples=0))
        dirs.append(d)
    runs = load_runs(dirs)
    # Priors given as arrays (the prior cache's output format): here, word length as a stand-in score.
    priors = [np.array([len(w) for w in split_words(t).words], dtype=np.float32) if i % 2 == 0 else None
              for i, t in enumerate(train_split.dataset["text"])]
    heat = model_heatmaps(checkpoint, train_split, priors, n=3, seed=0, ig_steps=8)
    assert len(heat) == 3 and all(h.prior is not None and h.prior.shape == h.model.shape for h in heat)
    saved = saved_heatmaps(runs[0], n=2)
    assert len(saved) == 2 and all(h.prior is None and len(h.words) == len(h.model) for h in saved)
    assert saved_heatmaps(runs[2]) == []  # that run measured no attributions
    pairs = sample_attack_pairs(att, n=4, seed=0)
    assert len(pairs) == 8 and all(p.original != p.attacked for p in pairs)
    assert [p.attacked for p in sample_attack_pairs(att, n=4, seed=0)] == [p.attacked for p in pairs]

    out = base / "report"
    paths = write_report(runs, out, heat, pairs)
    page = paths["html"].read_text()
    md = paths["markdown"].read_text()
    # Self-contained: inline CSS, every image a data URI that decodes to a PNG, no external resources.
    assert "<style>" in page and not re.search(r"(src|href)=['\"](?!data:)", page)
    imgs = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(imgs) == 1 + 3 and all(base64.b64decode(x)[:8] == b"\x89PNG\r\n\x1a\n" for x in imgs)
    assert "<mark>" in page  # attacked words are highlighted
    acc = np.mean([r["clean"]["accuracy"] for r in runs if r["method"] == "ce"])
    assert f"| ce | 2 | {100 * acc:.2f} ± 0.00 |" in md  # same model twice: std 0
    comp = 100 * runs[0]["faithfulness"]["comprehensiveness"]  # only the seed-0 run measured it
    assert f"| {comp:.2f} |" in md
    for f in re.findall(r"\]\((plots/[^)]+)\)", md):
        assert (out / f).is_file()
    with pytest.raises(FileExistsError):
        write_report(runs, out, heat, pairs)
