"""Run model-aware recipes against a checkpoint; summarise as TextAttack does; save the texts.

**Adaptive** (the robustness number): every model is attacked itself, :func:`run_model_attacks`.
**Transfer** (comparable across models): the texts generated against one model (the CE baseline)
are saved as an attack dataset — the same format and fingerprint checks as the keyword attacks,
one split per recipe, ``text`` = the adversarial text where the attack succeeded and the original
elsewhere — and every model is evaluated on exactly those texts (:func:`evaluate_transfer`, or
``eg-eval evaluate --transfer DIR``).

The summary follows TextAttack's attack summary table: of ``n`` examples, ``skipped`` were already
misclassified, the rest ``succeeded`` or ``failed``; accuracy under attack = failed / n, attack
success rate = succeeded / (succeeded + failed), average perturbed word % over successful attacks,
average queries over attacked (not skipped) examples.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import datasets
import numpy as np
from tqdm.auto import tqdm

from eg_train.evaluation.attacks.build import FORMAT, fingerprint_split, save_attacks
from eg_train.evaluation.attacks.flags import change_note
from eg_train.evaluation.attacks.model_attack import AttackOutcome
from eg_train.evaluation.attacks.recipes import ModelAttackConfig, Resources, build_recipe
from eg_train.evaluation.attacks.search import run_jobs
from eg_train.evaluation.attacks.victim import VictimModel
from eg_train.foundation.data.source import LabelledSplit

log = logging.getLogger(__name__)


@dataclass
class RecipeResult:
    """TextAttack's summary of one recipe on one model (rates and accuracies as fractions)."""

    recipe: str
    n: int
    succeeded: int
    failed: int
    skipped: int
    clean_accuracy: float
    accuracy_under_attack: float
    attack_success_rate: float | None
    avg_perturbed_word_pct: float | None  # over successful attacks, in %
    avg_words_per_input: float
    avg_queries: float | None  # over attacked (not skipped) examples
    seconds: float
    synonym_source: str | None = None
    warning: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ModelAttackResults:
    """Per-recipe summaries and attacked datasets of one model (``path``: where they were saved)."""

    checkpoint: str
    results: dict[str, RecipeResult]
    datasets: datasets.DatasetDict
    config: ModelAttackConfig
    path: Path | None = None
    victim_stats: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "setting": "adaptive",
            "checkpoint": self.checkpoint,
            "path": str(self.path.resolve()) if self.path else None,
            "config": asdict(self.config),
            "recipes": {k: v.as_dict() for k, v in self.results.items()},
            "victim": self.victim_stats,
        }


def summarise(recipe: str, outcomes: Sequence[AttackOutcome], seconds: float, source: str | None = None) -> RecipeResult:
    """TextAttack's summary numbers from per-example outcomes."""
    n = len(outcomes)
    status = [o.status for o in outcomes]
    succ, fail, skip = status.count("succeeded"), status.count("failed"), status.count("skipped")
    pct = [100.0 * len(o.perturbed) / max(1, len(o.original.state.words)) for o in outcomes if o.status == "succeeded"]
    queries = [o.queries for o in outcomes if o.status != "skipped"]
    return RecipeResult(
        recipe=recipe,
        n=n,
        succeeded=succ,
        failed=fail,
        skipped=skip,
        clean_accuracy=(succ + fail) / n if n else 0.0,
        accuracy_under_attack=fail / n if n else 0.0,
        attack_success_rate=succ / (succ + fail) if succ + fail else None,
        avg_perturbed_word_pct=float(np.mean(pct)) if pct else None,
        avg_words_per_input=float(np.mean([len(o.original.state.words) for o in outcomes])) if n else 0.0,
        avg_queries=float(np.mean(queries)) if queries else None,
        seconds=round(seconds, 2),
        synonym_source=source,
        # Adaptive: few successes is the robustness measurement itself; only "changed nothing at all" is flagged.
        warning=change_note(succ, n, min_fraction=0.0),
    )


def checkpoint_fingerprint(checkpoint: str | Path) -> str:
    """Content hash of a ``save_pretrained`` folder's weights and config (which model was attacked)."""
    path = Path(checkpoint)
    h = hashlib.sha1()
    files = sorted(p for p in path.glob("*") if p.suffix in (".safetensors", ".bin", ".json")) if path.is_dir() else []
    for p in files:
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16] if files else "unknown"


def outcomes_dataset(test: LabelledSplit, outcomes: Sequence[AttackOutcome]) -> datasets.Dataset:
    """One attacked split: the keyword-attack columns plus ``status``, ``queries``, ``perturbed_pct``."""
    rows: dict[str, list] = {k: [] for k in ("id", "text", "original_text", "label", "target_label", "changed",
                                             "edits", "goal_gain", "status", "queries", "perturbed_pct")}
    for ex, o in zip(test.dataset, outcomes):
        won = o.status == "succeeded"
        final = o.final if won else o.original
        edits = [e.as_dict() for e in o.final.state.edits] if won else []
        rows["id"].append(ex["id"])
        rows["text"].append(final.state.text)
        rows["original_text"].append(ex["text"])
        rows["label"].append(int(ex["label"]))
        rows["target_label"].append(final.predicted)  # the source model's prediction on ``text``
        rows["changed"].append(won)
        rows["edits"].append(json.dumps(edits))
        rows["goal_gain"].append(float(final.score - o.original.score))
        rows["status"].append(o.status)
        rows["queries"].append(int(o.queries))
        rows["perturbed_pct"].append(100.0 * len(o.perturbed) / max(1, len(o.original.state.words)) if won else 0.0)
    return datasets.Dataset.from_dict(rows)


def attack_examples(
    victim: VictimModel,
    recipe_name: str,
    texts: Sequence[str],
    labels: Sequence[int],
    config: ModelAttackConfig,
    resources: Resources,
    progress: bool = True,
) -> list[AttackOutcome]:
    """Attack every (text, label) with one recipe, all examples' queries pooled (see :mod:`..search`)."""
    attack = build_recipe(recipe_name, config, resources)
    channels = {"victim": victim.probs}
    if attack.sentence_similarity is not None:
        channels["encoder"] = resources.encoder.embed
    # One seed per (seed, example): results do not depend on order or on how examples are batched.
    jobs = (attack.attack(t, int(y), config.query_budget, int(np.random.SeedSequence([config.seed, i]).generate_state(1)[0]))
            for i, (t, y) in enumerate(zip(texts, labels)))
    with tqdm(total=len(texts), desc=recipe_name, leave=False, disable=not progress) as bar:
        return run_jobs(jobs, channels, config.max_active, bar.update)


def run_model_attacks(
    checkpoint: str | Path,
    test: LabelledSplit,
    config: ModelAttackConfig | None = None,
    out_dir: str | Path | None = None,
    device: str = "cpu",
    overwrite: bool = False,
    victim: VictimModel | None = None,
    resources: Resources | None = None,
) -> ModelAttackResults:
    """Attack ``checkpoint`` with every recipe of ``config`` on ``test`` (adaptive setting).

    With ``out_dir`` the attacked texts are saved there (one split per recipe, loadable with
    :func:`~.build.load_attacks` and usable as transfer texts for other models).
    """
    config = config or ModelAttackConfig()
    from eg_train.foundation.device import autocast

    with autocast(config.precision, device):
        return _run_model_attacks(checkpoint, test, config, out_dir, device, overwrite, victim, resources)


def _params(config: ModelAttackConfig, device: str) -> dict:
    """The stored settings: the resolved precision, and only when bf16 (fp32 results keep their earlier params)."""
    from eg_train.foundation.device import resolve_precision

    params = asdict(config)
    params.pop("precision")
    return {**params, "precision": "bf16"} if resolve_precision(config.precision, device) == "bf16" else params


def _run_model_attacks(checkpoint, test, config, out_dir, device, overwrite, victim, resources) -> ModelAttackResults:
    if len(test) == 0:
        raise ValueError(f"{test.source}: the test split is empty; nothing to attack")
    if out_dir is not None and Path(out_dir).exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass --overwrite true to replace it")
    victim = victim or VictimModel.from_checkpoint(str(checkpoint), device, batch_size=config.batch_size, max_length=config.max_length)
    resources = resources or Resources(config)
    texts, labels = test.dataset["text"], test.dataset["label"]
    meta_base = {
        "format": FORMAT,
        "kind": "model",
        "test_source": test.source,
        "test_fingerprint": fingerprint_split(test),
        "test_size": len(test),
        "label_names": list(test.label_names),
        "source_checkpoint": str(Path(checkpoint).resolve()) if Path(checkpoint).exists() else str(checkpoint),
        "source_fingerprint": checkpoint_fingerprint(checkpoint),
        "seed": config.seed,
        "params": _params(config, device),
    }
    results, splits = {}, {}
    for name in config.recipes:
        started = time.time()
        outcomes = attack_examples(victim, name, texts, labels, config, resources)
        source = None
        if name == "pwws":
            source = getattr(build_recipe(name, config, resources).transformation.source, "source", None)
        res = summarise(name, outcomes, time.time() - started, source)
        log.info("%s: accuracy under attack %.4f (clean %.4f), success rate %s, %.1f queries, %.0f s",
                 name, res.accuracy_under_attack, res.clean_accuracy, res.attack_success_rate, res.avg_queries or 0, res.seconds)
        ds = outcomes_dataset(test, outcomes)
        ds.info.description = json.dumps({**meta_base, "attack": name, "n_changed": res.succeeded, "summary": res.as_dict()})
        results[name], splits[name] = res, ds
    dd = datasets.DatasetDict(splits)
    path = save_attacks(dd, out_dir, overwrite=overwrite) if out_dir is not None else None
    stats = {"forward_passes": victim.forward_passes, "texts_scored": victim.texts_scored}
    return ModelAttackResults(str(checkpoint), results, dd, config, path, stats)
