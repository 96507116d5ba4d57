"""The evaluation stage's Python API: attack datasets, model-aware attacks, evaluation, reports.

    from eg_train.evaluation.api import attack, audit, model_attack, evaluate, report
    attack(DataSpec(preset="banking77"), "runs/attacks", subset=300)
    evaluate("runs/ce/model", DataSpec(preset="banking77"), "runs/ce/eval", attacks="runs/attacks", subset=300)

Each function takes typed arguments (``DataSpec``, ``AttackConfig``, ``EvalConfig``,
``ModelAttackConfig``), writes its outputs and returns their path; ``eg-eval``
(:mod:`eg_train.evaluation.cli`) is a shell over them. A summary of what each call did goes to the
``eg_train.evaluation.api`` logger, one line per result.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from eg_train.foundation.data.source import DataError, DataSpec, LabelledSplit, load_split
from eg_train.evaluation.attacks.build import AttackConfig, build_attacks, save_attacks
from eg_train.evaluation.attacks.flags import change_note
from eg_train.evaluation.attacks.recipes import ModelAttackConfig
from eg_train.evaluation.audit.run import AuditConfig
from eg_train.evaluation.evaluate import EvalConfig, evaluate_checkpoint

# What each call did, one line per result: the CLI shows these lines on stdout.
log = logging.getLogger("eg_train.evaluation.api")


def subsample(split: LabelledSplit, size: int | None, seed: int = 0) -> LabelledSplit:
    """A seeded random subset of ``size`` rows in source order (the whole split when None)."""
    if size is None or size >= len(split):
        return split
    if size <= 0:
        raise DataError(f"subset size must be positive, got {size}")
    idx = np.sort(np.random.default_rng(seed).choice(len(split), size=size, replace=False))
    return LabelledSplit(split.dataset.select(idx.tolist()), split.label_names, f"{split.source}[subset {size}, seed {seed}]", split.skipped)


def attack(
    data: DataSpec,
    out: str,
    params: AttackConfig = AttackConfig(),
    train_split: str = "train",
    test_split: str = "test",
    subset: int | None = None,
    subset_seed: int = 0,
    overwrite: bool = False,
) -> str:
    """Build the keyword attack datasets for a test split (lexicon from the training split).

    Args:
        data: where the dataset comes from (``--data.preset banking77`` or explicit files).
        out: folder to write (``datasets.save_to_disk`` layout, one split per attack).
        params: attack parameters (seed, edits, thresholds).
        train_split: split the keywords and confusable pairs are derived from.
        test_split: split to attack.
        subset: attack only a seeded random subset of the test split (use the same in ``evaluate``).
        subset_seed: seed of that subset.
        overwrite: replace an existing ``out``.
    """
    if Path(out).exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite true to replace it")
    train = load_split(data, train_split)
    test = subsample(load_split(data, test_split), subset, subset_seed)
    attacks = build_attacks(train, test, params)
    path = save_attacks(attacks, out, overwrite=overwrite)
    for name, ds in attacks.items():
        n_changed = int(sum(ds["changed"]))
        note = change_note(n_changed, len(ds))
        log.info("%s", f"{name}: {n_changed} of {len(ds)} texts changed" + (f"  WARNING: {note}" if note else ""))
    log.info("%s", f"wrote {path}")
    return str(path)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def recipe_line(name: str, r: dict) -> str:
    """One model-aware recipe's TextAttack summary as one line (its warning appended)."""
    words = r["avg_perturbed_word_pct"]
    queries = r["avg_queries"]
    line = (f"{name}: accuracy under attack {_pct(r['accuracy_under_attack'])} (clean {_pct(r['clean_accuracy'])}), "
            f"success rate {_pct(r['attack_success_rate'])}, skipped {r['skipped']}, "
            f"perturbed words {'n/a' if words is None else f'{words:.1f}%'}, "
            f"queries {'n/a' if queries is None else f'{queries:.1f}'}")
    return line + (f"  WARNING: {r['warning']}" if r.get("warning") else "")


def model_attack(
    checkpoint: str,
    data: DataSpec,
    out: str,
    params: ModelAttackConfig = ModelAttackConfig(),
    split: str = "test",
    subset: int | None = None,
    subset_seed: int = 0,
    device: str = "cpu",
    overwrite: bool = False,
) -> str:
    """Attack a checkpoint with the model-aware recipes; save the texts (transfer texts for other models).

    Args:
        checkpoint: the victim (``save_pretrained`` folder with ``config.id2label``), e.g. the CE model.
        data: the dataset (its label list must equal the checkpoint's).
        out: folder to write (one split per recipe; ``eg-eval evaluate --transfer OUT`` evaluates
            any model on exactly these texts).
        params: recipes, query budget per example, seed, synonym source (WordNet dir), thresholds.
        split: split to attack.
        subset: attack a seeded random subset of the split (use the same in ``evaluate``).
        subset_seed: seed of that subset.
        device: where the victim runs (cpu | cuda).
        overwrite: replace an existing ``out``.
    """
    from eg_train.evaluation.attacks.run_model import run_model_attacks
    from eg_train.evaluation.evaluate import check_labels

    test = subsample(load_split(data, split), subset, subset_seed)
    check_labels(checkpoint, test)
    res = run_model_attacks(checkpoint, test, params, out, device=device, overwrite=overwrite)
    for name, r in res.results.items():
        log.info("%s", recipe_line(name, r.as_dict()))
    log.info("%s", f"wrote {res.path}")
    return str(res.path)


def summary_line(metrics: dict) -> str:
    """The ``eg-eval evaluate`` line: clean, per-attack and faithfulness numbers, with any warning."""
    line = f"{metrics['method']}: accuracy {100 * metrics['clean']['accuracy']:.2f}%"
    for kind in ("attacks", "transfer"):
        for name, a in (metrics.get(kind) or {}).items():
            label = name if kind == "attacks" else f"transfer {name}"
            line += f", {label} {100 * a['accuracy']:.2f}% (drop {100 * a['drop']:.2f})"
            if a.get("warning"):
                line += f" [WARNING: {label} {a['warning']}]"
    if metrics["faithfulness"]:
        f = metrics["faithfulness"]
        line += f", comp {100 * f['comprehensiveness']:.2f}%, suff {100 * f['sufficiency']:.2f}%"
    return line


def evaluate(
    checkpoint: str,
    data: DataSpec,
    out: str,
    attacks: str | None = None,
    split: str = "test",
    method: str | None = None,
    seed: int | None = None,
    params: EvalConfig = EvalConfig(),
    subset: int | None = None,
    subset_seed: int = 0,
    overwrite: bool = False,
    transfer: str | None = None,
    model_attacks: list[str] = [],
    attack_params: ModelAttackConfig = ModelAttackConfig(),
) -> str:
    """Evaluate a checkpoint on the clean and attacked test sets; write ``<out>/metrics.json``.

    Args:
        checkpoint: ``save_pretrained`` folder with ``config.id2label`` (e.g. ``runs/ce/model``).
        data: the dataset (its label list must equal the checkpoint's).
        out: output folder (metrics.json, predictions.jsonl, attributions.jsonl).
        attacks: folder written by ``eg-eval attack`` for this same test set.
        split: split to evaluate.
        method: method name used to group runs in reports (default: the run folder name).
        seed: training seed of this run (recorded; reports average over runs of a method).
        params: batch sizes, faithfulness subset size and IG steps.
        subset: evaluate a seeded random subset of the split (must match the attack file's).
        subset_seed: seed of that subset.
        overwrite: replace an existing ``metrics.json``.
        transfer: texts generated against another model (``eg-eval model_attack`` output) to
            evaluate this model on, for accuracy comparable across models.
        model_attacks: model-aware recipes to run against this model (adaptive), e.g. ``[pwws]``.
        attack_params: their settings (query budget, seed, WordNet dir, ...; ``recipes`` is ignored).
    """
    test = subsample(load_split(data, split), subset, subset_seed)
    adaptive = replace(attack_params, recipes=tuple(model_attacks)) if model_attacks else None
    metrics = evaluate_checkpoint(checkpoint, test, out, attacks, method, seed, params, overwrite,
                                  transfer=transfer, model_attacks=adaptive)
    log.info("%s", summary_line(metrics))
    for name, r in ((metrics.get("model_attacks") or {}).get("recipes") or {}).items():
        log.info("%s", recipe_line(name, r))
    log.info("%s", f"wrote {Path(out) / 'metrics.json'}")
    return str(Path(out) / "metrics.json")


def report(
    runs: list[str],
    out: str,
    attacks: str | None = None,
    pairs_per_attack: int = 8,
    priors_cache: str | None = None,
    priors_data: DataSpec | None = None,
    priors_split: str = "train",
    priors_k_shot: int | None = None,
    priors_sample_seed: int = 0,
    priors_methods: list[str] = ["lime", "cap", "ig"],
    heatmap_examples: int = 6,
    heatmap_checkpoint: str | None = None,
    seed: int = 0,
    title: str = "eg-train evaluation report",
    overwrite: bool = False,
) -> str:
    """Write ``report.md`` and a self-contained ``report.html`` from evaluation folders.

    Args:
        runs: evaluation folders (or metrics.json files); runs sharing a method are averaged.
        out: report folder.
        attacks: attack folder to draw original/attacked pairs from (default: the first run's).
        pairs_per_attack: random changed pairs shown per attack.
        priors_cache: prior cache folder; with it, heatmaps show the fused prior next to the model's IG.
        priors_data: dataset of the cached priors; without a cache, heatmaps show the model's IG on
            examples of this split; without either, the IG saved by ``evaluate`` (test examples).
        priors_split: split of ``priors_data`` the priors were computed on.
        priors_k_shot: the priors cover a k-shot sample of that split (``SampleSpec``): heatmaps are
            drawn from exactly those examples.
        priors_sample_seed: the seed of that sample.
        priors_methods: priors to fuse (mean of min-max normalised priors).
        heatmap_examples: number of heatmaps.
        heatmap_checkpoint: model whose IG is shown (default: the first run's checkpoint).
        seed: seed for the random pairs and heatmap examples.
        title: report title.
        overwrite: replace an existing report.
    """
    from eg_train.evaluation.report import (
        load_runs,
        model_heatmaps,
        sample_attack_pairs,
        saved_heatmaps,
        write_report,
    )

    loaded = load_runs(runs)
    attack_path = attacks or loaded[0].get("attack_path")
    pairs = sample_attack_pairs(attack_path, pairs_per_attack, seed) if attack_path else []
    # Model-aware texts of the first run too: adaptive (attacked itself) and transfer (from another model).
    first = loaded[0]
    for prefix, extra in (("adaptive ", (first.get("model_attacks") or {}).get("path")), ("transfer ", first.get("transfer_path"))):
        if extra and Path(extra).exists():
            pairs += sample_attack_pairs(extra, pairs_per_attack, seed, prefix)
    heatmaps = []
    if heatmap_examples > 0:
        ckpt = heatmap_checkpoint or loaded[0]["checkpoint"]
        if priors_cache:
            if priors_data is None:
                raise ValueError("--priors_cache needs --priors_data (the dataset the priors were computed on)")
            from priors.cache import load_fused_priors

            from eg_train.foundation.data.fewshot import SampleSpec

            split = SampleSpec(priors_data, priors_k_shot, priors_sample_seed, priors_split).load()
            priors = load_fused_priors(priors_cache, split, priors_methods, on_missing="skip")
            heatmaps = model_heatmaps(ckpt, split, priors, heatmap_examples, seed)
        elif priors_data is not None:
            heatmaps = model_heatmaps(ckpt, load_split(priors_data, priors_split), None, heatmap_examples, seed)
        else:  # no priors: the model's own attributions saved by `evaluate`
            heatmaps = saved_heatmaps(loaded[0], heatmap_examples, seed)
    paths = write_report(loaded, out, heatmaps, pairs, title, overwrite)
    log.info("%s", f"wrote {paths['markdown']} and {paths['html']}")
    return str(paths["html"])


def audit_line(c: dict) -> str:
    """One confirmed audit feature as one line."""
    share = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    return (f"confirmed: {c['class']}: {c['feature']!r} ({c['position']}) flip {share(c['flip_rate'])} vs control "
            f"{share(c['flip_rate_control'])}, model share {share(c['model_share'])}, prior share {share(c['prior_share'])}")


def _heldout(data: DataSpec, split: str, reserve_per_class: int, train_full: LabelledSplit, used: set[str],
             seed: int) -> LabelledSplit:
    """The verification split: ``split`` of ``data`` when it has one, else ``reserve_per_class`` texts per
    class drawn (seeded, as training carves its validation texts) from the training split's texts outside
    the training sample. Never the test split."""
    if split == "test":
        raise DataError("the audit verifies on a held-out split (validation or reserved training texts), never on the test split")
    try:
        return load_split(data, split)
    except (DataError, FileNotFoundError, KeyError, ValueError) as err:
        if reserve_per_class <= 0:
            raise DataError(f"no {split!r} split to verify the audit on ({err}); pass --reserve_per_class N to "
                            "reserve N training texts per class outside the training sample") from None
    from eg_train.foundation.data.fewshot import carve_per_class

    carved, _ = carve_per_class(train_full, reserve_per_class, seed, exclude=used)  # training's own validation carve
    if not len(carved):
        raise DataError(f"{train_full.source}: every training text is in the training sample, none is left to reserve; "
                        "give a validation split")
    return LabelledSplit(carved.dataset, train_full.label_names,
                         f"{train_full.source}[reserved {reserve_per_class}/class]", train_full.skipped)


def audit(
    checkpoint: str,
    data: DataSpec,
    out: str,
    prior_cache: str,
    prior_methods: list[str] = ["lime", "cap"],
    fusion: str = "mean",
    normalisation: str = "minmax",
    train_split: str = "train",
    k_shot: int | None = None,
    sample_seed: int = 0,
    heldout_split: str = "validation",
    reserve_per_class: int = 0,
    params: AuditConfig = AuditConfig(),
    device: str = "cpu",
    overwrite: bool = False,
) -> str:
    """Audit a trained classifier for shortcuts; write ``<out>/audit.json``, ``audit.md`` and ``audit.html``.

    Args:
        checkpoint: the classifier (``save_pretrained`` folder with ``config.id2label``).
        data: its dataset (the label list must equal the checkpoint's).
        out: output folder.
        prior_cache: prior cache folder; priors are found by the text fingerprint it stores.
        prior_methods: the prior (one method, or several fused, e.g. ``[lime, cap, ig]``).
        fusion, normalisation: how several methods are fused (as training fuses them).
        train_split: the split the model was trained on.
        k_shot: the model was trained on a k-shot sample of it (``SampleSpec``): audit those texts.
        sample_seed: that sample's seed.
        heldout_split: the verification split (``validation``); never ``test``.
        reserve_per_class: when ``heldout_split`` does not exist, reserve this many training texts per
            class outside the training sample instead (seed ``sample_seed + 1``, training's validation carve).
        params: the audit's settings (:class:`~eg_train.evaluation.audit.AuditConfig`).
        device: where the model runs (cpu | cuda).
        overwrite: replace an existing ``audit.json``.
    """
    import torch

    from eg_train.evaluation.audit import run_audit
    from eg_train.evaluation.audit.prior_lookup import priors_by_fingerprint
    from eg_train.evaluation.audit.report import write_audit_report
    from eg_train.evaluation.evaluate import check_labels
    from eg_train.foundation.data.fewshot import SampleSpec
    from eg_train.foundation.io import atomic_write_json
    from eg_train.foundation.models.resolve import load_sequence_classifier

    import time

    started = time.perf_counter()
    target = Path(out) / "audit.json"
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass --overwrite true to replace it")
    spec = SampleSpec(data, k_shot, sample_seed, train_split)
    full = spec.load_full()
    train = spec.sample(full)
    used = set(train.dataset["id"]) if k_shot else set(full.dataset["id"])
    heldout = _heldout(data, heldout_split, reserve_per_class, full, used, sample_seed + 1)
    check_labels(checkpoint, train)
    priors = priors_by_fingerprint(prior_cache, train.dataset["text"], prior_methods, fusion, normalisation)
    model, tok = load_sequence_classifier(str(checkpoint))
    model.to(torch.device(device)).eval()
    loaded = time.perf_counter()
    doc = run_audit(model, tok, train, priors, heldout, params)
    doc.update({"checkpoint": str(checkpoint), "prior": {"cache": str(prior_cache), "methods": list(prior_methods),
                                                         "fusion": fusion, "normalisation": normalisation}})
    paths = write_audit_report(doc, out)
    doc["seconds"].update({"load": round(loaded - started, 2), "report": round(time.perf_counter() - loaded - doc["seconds"]["total"], 2),
                           "wall": round(time.perf_counter() - started, 2)})
    atomic_write_json(target, doc)
    for c in doc["confirmed"]:
        log.info("%s", audit_line(c))
    log.info("%s", f"{doc['counts']['confirmed']} confirmed of {doc['counts']['tested']} tested candidates "
             f"({doc['seconds']['total']:.1f} s)")
    log.info("%s", f"wrote {target}, {paths['markdown']} and {paths['html']}")
    return str(target)
