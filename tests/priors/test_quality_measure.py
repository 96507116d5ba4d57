"""``eg-priors quality`` end to end on the real SmolLM2, and the cache's metadata store."""

import json

import numpy as np
import pytest

from eg_train.foundation.data import DataSpec, load_split
from priors.cache import PriorCache
from priors.api import quality as run_quality
from priors.cli import main
from priors.config import PriorsConfig
from priors.prompts import class_aware_template, plain_template
from priors.quality import label_logprob_matrix, stored_quality
from priors.scorer import LabelScorer

ROWS = [
    ("my card is blocked after three wrong pins", "pin_blocked"),
    ("how old must I be to open an account", "age_limit"),
    ("where is my new card, still waiting", "card_arrival"),
    ("the app says my pin is blocked", "pin_blocked"),
    ("is there a minimum age for kids", "age_limit"),
    ("my card has not arrived yet", "card_arrival"),
]
LABELS = ["card_arrival", "pin_blocked", "age_limit"]


def test_metadata_roundtrip_and_names(tmp_path):
    cache = PriorCache(tmp_path)
    assert cache.read_metadata("quality-cap-abc") is None and cache.metadata_names() == []
    path = cache.write_metadata("quality-cap-abc", {"llm_accuracy": 0.5, "nan": float("nan")})
    assert path == tmp_path / "metadata" / "quality-cap-abc.json"
    cache.write_metadata("quality-cap-abc", {"llm_accuracy": 0.75})  # replaced whole
    assert cache.read_metadata("quality-cap-abc") == {"llm_accuracy": 0.75}
    cache.write_metadata("other", {})
    assert cache.metadata_names("quality-") == ["quality-cap-abc"]
    assert not [p for p in (tmp_path / "metadata").iterdir() if p.name.startswith(".")]  # no temporaries
    for bad in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(ValueError, match="invalid metadata name"):
            cache.write_metadata(bad, {})


@pytest.mark.parametrize("kind", ["class_aware", "plain"])
def test_label_logprob_matrix_equals_full_prompts(smollm, kind):
    tpl = class_aware_template(LABELS) if kind == "class_aware" else plain_template()
    scorer = LabelScorer(*smollm, tpl, LABELS, batch_size=5)
    texts = [ROWS[0][0], ROWS[1][0]]
    lp = label_logprob_matrix(scorer, texts)
    full = np.array([[scorer.full_prompt_log_prob(t, y) for y in range(len(LABELS))] for t in texts])
    np.testing.assert_allclose(lp, full, atol=2e-4)


@pytest.fixture(scope="module")
def computed(tmp_path_factory, smollm):
    d = tmp_path_factory.mktemp("quality")
    csv = d / "train.csv"
    csv.write_text("text,category\n" + "".join(f'"{t}",{c}\n' for t, c in ROWS), encoding="utf-8")
    cfg = d / "priors.yaml"
    cfg.write_text(
        f"data:\n  files: {{train: {csv}}}\n  label_column: category\n  labels: {LABELS}\n"
        f"methods: [lime, cap]\nn_samples: 8\ncache_dir: {d / 'cache'}\nbatch_size: 3\nscorer_batch_size: 32\n"
        "llm: smollm2-135m-instruct\ndemonstrations_per_class: 0\n"
    )
    main(["compute", "--config", str(cfg)])
    main(["fuse", "--config", str(cfg), "--fusion", "[mean]"])
    return d, cfg


def test_quality_cli_measures_and_stores(computed, smollm, capsys):
    d, cfg = computed
    capsys.readouterr()
    out = d / "quality.json"
    main(["quality", "--config", str(cfg), "--out", str(out), "--extra_methods", "[hybrid_mean]", "--n_random", "2"])
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == printed
    methods = printed["methods"]
    assert sorted(m["method"] for m in methods.values()) == ["cap", "hybrid_mean", "lime"]
    # Nothing outside the cached split is left: keywords are mined leave-one-out.
    assert "leave-one-out" in printed["reference"]["description"]
    for m in methods.values():
        assert m["coverage"] == 1.0 and m["keyword_examples"] == len(ROWS)
        assert 0.0 <= m["keyword_precision_at_3"] <= m["keyword_precision_at_3_ceiling"] <= 1.0
    for name in ("lime", "cap"):
        m = next(v for v in methods.values() if v["method"] == name)
        assert m["queries_per_example"] == 8 and m["n"] == len(ROWS)
        assert 0.0 <= m["llm_accuracy"] <= 1.0 and 1 <= m["median_gold_rank"] <= len(LABELS)
        assert np.isfinite(m["deletion_aopc"]) and m["deletion_queries"] > 0
    hybrid = next(v for v in methods.values() if v["method"] == "hybrid_mean")
    assert "llm_accuracy" not in hybrid  # no LLM of its own: model-free metrics only
    assert len(printed["spearman"]) == 3
    # Competence is that of the LLM under each prompt: recompute it independently.
    split = load_split(DataSpec(files={"train": str(d / "train.csv")}, label_column="category", labels=LABELS), "train")
    cap = next(v for v in methods.values() if v["method"] == "cap")
    scorer = LabelScorer(*smollm, class_aware_template(LABELS), LABELS)
    full = np.array([[scorer.full_prompt_log_prob(t, y) for y in range(3)] for t in split.dataset["text"]])
    assert cap["llm_accuracy"] == pytest.approx(float((full.argmax(1) == np.array(split.dataset["label"])).mean()))
    # Stored in the cache, one document per method and config, and shown in the report.
    stored = stored_quality(PriorCache(d / "cache"))
    assert set(stored) == set(methods)
    assert stored[next(iter(methods))]["settings"]["n_random"] == 2
    main(["report", "--config", str(cfg), "--out", str(d / "report.html")])
    page = (d / "report.html").read_text()
    assert "Prior quality" in page and "keyword P@3" in page


def test_quality_of_an_uncached_config_is_reported_not_invented(computed, smollm):
    import yaml

    d, cfg = computed
    raw = yaml.safe_load(cfg.read_text())
    raw["n_samples"] = 9  # another config hash: nothing cached for it
    other = d / "other.yaml"
    other.write_text(yaml.safe_dump(raw))
    result = run_quality(_load(other), n_random=1)
    for m in result["methods"].values():
        assert m["coverage"] == 0.0 and "no " in m["note"]


def _load(path) -> PriorsConfig:
    from priors.cli import _parser, _parser_namespace_to_config

    ns = _parser().parse_args(["compute", "--config", str(path)])["compute"].clone()
    del ns["config"]
    return _parser_namespace_to_config(ns)


def test_competence_with_demonstrations_uses_each_examples_own_scorer(computed, smollm):
    """With demonstrations every example is scored under the set that excludes it: competence
    must use that scorer, checked against its uncached full prompts."""
    from priors.config import build_methods
    from priors.quality.llm import LabelScoreMemo, scorer_of

    d, cfg = computed
    split = load_split(DataSpec(files={"train": str(d / "train.csv")}, label_column="category", labels=LABELS), "train")
    pc = _load(cfg)
    pc.methods, pc.demonstrations_per_class = ["cap"], 1
    [method] = build_methods(pc, LABELS, split)
    ids, texts = split.dataset["id"], split.dataset["text"]
    scorers = [scorer_of(method, i) for i in ids]
    assert len({id(s) for s in scorers}) == 2  # two demonstration sets
    lp = LabelScoreMemo().matrix(scorers, texts)
    for sc, t, row in zip(scorers, texts, lp):
        assert t not in sc.template.prefix  # never its own demonstration
        np.testing.assert_allclose(row, [sc.full_prompt_log_prob(t, y) for y in range(3)], atol=2e-4)


def test_memo_shares_raw_scores_and_calibrates_like_the_scorer(smollm):
    from priors.quality.llm import LabelScoreMemo

    tpl = class_aware_template(LABELS)
    raw = LabelScorer(*smollm, tpl, LABELS)
    cal = LabelScorer(*smollm, tpl, LABELS, contrast="full", calibrate=True)
    texts = [ROWS[0][0], ROWS[2][0]]
    memo = LabelScoreMemo()
    a = memo.matrix([raw, raw], texts)
    before = cal.queries
    b = memo.matrix([cal, cal], texts)
    assert cal.queries == before  # the calibrated scorer reused the raw pass (its bias aside)
    np.testing.assert_allclose(b, cal.label_logprobs(texts).numpy(), atol=1e-9)
    np.testing.assert_allclose(a, raw.label_logprobs(texts).numpy(), atol=1e-9)
