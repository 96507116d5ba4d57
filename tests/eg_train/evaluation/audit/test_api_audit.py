"""``eg_train.evaluation.api.audit`` / ``eg-eval audit`` end to end on a real small classifier."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eg_train.evaluation.api import audit
from eg_train.evaluation.audit import AuditConfig, counter_shortcut_split
from eg_train.evaluation.audit.report import render_audit_section
from eg_train.foundation.data.fewshot import SampleSpec
from eg_train.foundation.words import split_words
from priors.cache import PriorCache, make_record

K_SHOT = 6
PARAMS = AuditConfig(max_texts_per_class=3, ig_steps=4, candidates_per_class=2, n_controls=2, n_boot=300, llm=None,
                     list_per_class=5)


@pytest.fixture(scope="module")
def flat_cache(tmp_path_factory, banking_subset):
    """A uniform prior (every word 1) for the k-shot training texts: the prior that calls nothing relevant."""
    split = SampleSpec(banking_subset, K_SHOT, 0, "train").load()
    cache = PriorCache(tmp_path_factory.mktemp("audit_cache"))
    recs = [make_record(i, t, y, split_words(t).words, np.ones(len(split_words(t))), "lime", "flat", "h0")
            for i, t, y in zip(split.dataset["id"], split.dataset["text"], split.dataset["label"])]
    cache.append(recs, "lime", "h0")
    return cache.root


def test_audit_writes_its_document_report_and_a_usable_counter_split(tmp_path, checkpoint, banking_subset, flat_cache):
    path = audit(str(checkpoint), banking_subset, str(tmp_path / "audit"), str(flat_cache), ["lime"], k_shot=K_SHOT,
                 reserve_per_class=3, params=PARAMS)
    doc = json.loads(open(path).read())
    assert doc["counts"]["train"] == 10 * K_SHOT and doc["counts"]["heldout"] == 30
    assert doc["counts"]["train_with_prior"] == 10 * K_SHOT
    keys = {"feature", "class", "position", "count", "association", "model_share", "prior_share", "flip_rate",
            "flip_rate_control", "flip_ci95"}
    tested = [c for c in doc["candidates"] if c["tested"]]
    assert tested and all(keys <= set(c) for c in tested)
    for c in tested:  # the rule: confirmed exactly when the interval's lower end is above 0
        assert c["confirmed"] == (c["flip_ci95"] is not None and c["flip_ci95"][0] > 0 and not c["prior_singles_out"])
        assert not c["prior_singles_out"]  # a flat prior gives every feature exactly its uniform share
        assert 0 <= c["flip_rate"] <= 1 and c["position"] in ("first", "last", "any")
    assert sorted(c["feature"] for c in doc["confirmed"]) == sorted(c["feature"] for c in tested if c["confirmed"])
    assert (tmp_path / "audit" / "audit.md").is_file() and (tmp_path / "audit" / "audit.html").is_file()
    html = render_audit_section(doc, "html")
    assert "Shortcut audit" in html and all(c["feature"] in html for c in doc["confirmed"])
    if doc["confirmed"]:
        from eg_train.foundation.data.source import load_split

        counter = counter_shortcut_split(doc, load_split(banking_subset, "test"), per_text=1)
        assert len(counter) > 0 and set(counter.dataset["feature"]) <= {c["feature"] for c in doc["confirmed"]}
        assert doc["positions"] and all(p["positions"] for p in doc["positions"])
    with pytest.raises(FileExistsError):
        audit(str(checkpoint), banking_subset, str(tmp_path / "audit"), str(flat_cache), ["lime"], k_shot=K_SHOT,
              reserve_per_class=3, params=PARAMS)


@pytest.mark.parametrize("extra, message", [
    (["--heldout_split", "test"], "never on the test split"),
    ([], "reserve_per_class"),
])
def test_cli_refuses_the_test_split_and_a_missing_heldout_split(tmp_path, capsys, banking_subset, flat_cache, extra,
                                                                 message):
    from eg_train.evaluation.cli import main

    files = json.dumps(banking_subset.files)
    args = ["audit", "--checkpoint", str(tmp_path / "none"), "--data.files", files, "--data.text_column", "text",
            "--data.label_column", "category", "--data.labels_file", banking_subset.labels_file,
            "--out", str(tmp_path / "a"), "--prior_cache", str(flat_cache), "--prior_methods", "[lime]", *extra]
    with pytest.raises(SystemExit) as err:
        main(args)
    assert err.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_the_llm_counterfactual_runs_by_name_and_takes_part_in_the_verdict(tmp_path, checkpoint, banking_subset, flat_cache):
    from dataclasses import replace

    params = replace(PARAMS, candidates_per_class=1, llm="smollm2-135m-instruct", llm_max_texts=4, llm_scope="tested")
    path = audit(str(checkpoint), banking_subset, str(tmp_path / "audit"), str(flat_cache), ["lime"], k_shot=K_SHOT,
                 reserve_per_class=3, params=params)
    doc = json.loads(open(path).read())
    tested = [c for c in doc["candidates"] if c["tested"]]
    assert tested and all(c["llm_tested"] for c in tested) and doc["settings"]["llm"] == "smollm2-135m-instruct"
    assert doc["counts"]["llm_pairs"] > 0 and doc["seconds"]["llm"] > 0
    for c in tested:
        assert c["llm_n"] <= 4 and {"llm_delta_log_p", "llm_ci95", "llm_word_margin", "llm_evidence"} <= set(c)
        flip = c["flip_ci95"] is not None and c["flip_ci95"][0] > 0
        assert c["confirmed"] == (flip and not c["prior_singles_out"] and not c["llm_evidence"])
    assert "LLM Δ log p" in open(tmp_path / "audit" / "audit.md").read()
