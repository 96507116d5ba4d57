"""TextAttack side of ``bench_attacks.py``: run one TextAttack recipe, print per-example results.

Runs inside the environment ``scripts/textattack_env.py`` builds (never the project's ``.venv``):

    .bench_env/textattack/venv/bin/python scripts/bench_attacks_textattack.py IN.json OUT.json

``IN.json``: ``{"checkpoint", "recipe", "texts", "labels", "query_budget", "seed", "threads"}``.
``OUT.json``: ``{"seconds", "load_seconds", "examples": [{"status", "queries", "perturbed_pct"}]}``,
``seconds`` being the wall time of ``Attacker.attack_dataset`` alone.
"""

from __future__ import annotations

import json
import sys
import time

RECIPES = {"deepwordbug": "DeepWordBugGao2018", "pwws": "PWWSRen2019", "textfooler": "TextFoolerJin2019"}


def main() -> None:
    spec = json.loads(open(sys.argv[1], encoding="utf-8").read())
    started = time.time()
    import torch

    torch.set_num_threads(int(spec.get("threads", 1)))
    import textattack
    import transformers
    from textattack.attack_results import FailedAttackResult, SkippedAttackResult, SuccessfulAttackResult

    model = transformers.AutoModelForSequenceClassification.from_pretrained(spec["checkpoint"]).eval()
    tok = transformers.AutoTokenizer.from_pretrained(spec["checkpoint"])
    wrapper = textattack.models.wrappers.HuggingFaceModelWrapper(model, tok)
    attack = getattr(textattack.attack_recipes, RECIPES[spec["recipe"]]).build(wrapper)
    dataset = textattack.datasets.Dataset(list(zip(spec["texts"], spec["labels"])))
    args = textattack.AttackArgs(
        num_examples=len(spec["texts"]), query_budget=spec.get("query_budget"), random_seed=spec.get("seed", 0),
        disable_stdout=True, silent=True,
    )
    attacker = textattack.Attacker(attack, dataset, args)
    load_seconds = time.time() - started
    t0 = time.time()
    results = attacker.attack_dataset()
    seconds = time.time() - t0
    rows = []
    for r in results:
        if isinstance(r, SkippedAttackResult):
            status = "skipped"
        elif isinstance(r, SuccessfulAttackResult):
            status = "succeeded"
        elif isinstance(r, FailedAttackResult):
            status = "failed"
        else:  # MaximizedAttackResult does not occur with untargeted classification
            status = type(r).__name__
        orig, pert = r.original_result.attacked_text, r.perturbed_result.attacked_text
        pct = 100.0 * len(orig.all_words_diff(pert)) / max(1, len(orig.words)) if status == "succeeded" else 0.0
        rows.append({"status": status, "queries": int(r.perturbed_result.num_queries), "perturbed_pct": pct,
                     "perturbed_text": pert.text})
    with open(sys.argv[2], "w", encoding="utf-8") as fh:
        json.dump({"seconds": seconds, "load_seconds": load_seconds, "examples": rows}, fh)


if __name__ == "__main__":
    main()
