"""Build, save and load the keyword attack datasets (one ``datasets`` split per attack).

Each attacked split has the test set's rows in order, with columns ``id``, ``text`` (attacked),
``original_text``, ``label`` (gold, unchanged), ``target_label`` (the confusable class pushed
towards), ``changed`` (False when no admissible edit existed: the text is kept as is), ``edits``
(JSON list) and ``goal_gain``. Its ``info.description`` holds the metadata as JSON: test-set
source and fingerprint, label names, training fingerprint, seed and every parameter. Loading
checks the fingerprint against the test set being evaluated.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import datasets
import numpy as np
from tqdm.auto import tqdm

from eg_train.foundation.data.source import LabelledSplit
from eg_train.foundation.io import atomic_dir
from eg_train.evaluation.attacks.core import (
    AttackContext,
    AvoidDefiningWords,
    GreedySearch,
    IntentCompatibility,
    KeywordInsertion,
    KeywordSwap,
    Synonyms,
    LogOddsGoal,
    MaxModificationRate,
    NoDuplicateWord,
    NoNegationSwap,
    PreserveGoldEvidence,
    RepeatModification,
    StopwordModification,
    TextState,
)
from eg_train.evaluation.attacks.lexicon import Lexicon, build_lexicon, split_fingerprint
from eg_train.foundation.registry import Registry
from eg_train.evaluation.attacks.synonyms import EmbeddingNeighbours

log = logging.getLogger(__name__)

FORMAT = "eg-train-attacks/1"


class AttackFileError(ValueError):
    """An attack dataset that cannot be used with the test set at hand."""


@dataclass
class AttackConfig:
    """Parameters of the keyword attacks (all stored in the saved metadata; see ``eg_train/evaluation/ATTACKS.md``).

    Attributes:
        seed: seed of every draw (each example has its own generator from (seed, attack, row)).
        attacks: the attacks to build (``keyword_addition``, ``keyword_replacement``).
        max_insertions: keywords inserted per text by keyword addition.
        max_replacements: words replaced per text by keyword replacement.
        pool_size: the strongest keywords of the confusable class an insertion is drawn from.
        min_z: the least log-odds z-score of a keyword.
        min_similarity: the least embedding cosine of a replacement with the word it replaces.
        synonym_model: the model whose static input embeddings give the near-synonyms.
        min_count: words seen in fewer training texts are dropped from the vocabulary.
        folds: cross-validation folds of the classifier that finds each class's confusable class.
    """

    seed: int = 0
    attacks: tuple[str, ...] = ("keyword_addition", "keyword_replacement")
    max_insertions: int = 2
    max_replacements: int = 2
    max_modification_rate: float = 0.3  # replacements only: share of the original words
    pool_size: int = 20
    min_z: float = 1.96
    min_gold_docs: int = 2  # IntentCompatibility
    preserve_top_evidence: int = 1  # PreserveGoldEvidence
    avoid_defining_words: int = 3  # AvoidDefiningWords: the target class's top one-vs-rest keywords
    min_similarity: float = 0.5
    synonym_model: str = "all-minilm-l6-v2"
    confusable_top: int = 1  # the target class is drawn (seeded) among the top-m confusable classes
    prior_scale: float = 0.01  # Dirichlet prior mass as a share of the training word count
    min_count: int = 2
    folds: int = 5

    def __post_init__(self) -> None:
        self.attacks = tuple(self.attacks)
        KEYWORD_ATTACKS.check(self.attacks)


def fingerprint_split(split: LabelledSplit) -> str:
    """Fingerprint of a test split: texts, labels and label names in order."""
    return split_fingerprint(split.dataset["text"], split.dataset["label"], split.label_names)


KeywordRecipe = tuple  # (transformation, constraints, search)
KEYWORD_ATTACKS: Registry[KeywordRecipe] = Registry("keyword attack")


@KEYWORD_ATTACKS.register("keyword_addition")
def _keyword_addition(cfg: "AttackConfig", synonyms: Synonyms | None) -> KeywordRecipe:
    constraints = [StopwordModification(), NoDuplicateWord(), IntentCompatibility(cfg.min_gold_docs),
                   AvoidDefiningWords(cfg.avoid_defining_words)]
    return KeywordInsertion(cfg.pool_size, cfg.min_z), constraints, GreedySearch(cfg.max_insertions)


@KEYWORD_ATTACKS.register("keyword_replacement")
def _keyword_replacement(cfg: "AttackConfig", synonyms: Synonyms | None) -> KeywordRecipe:
    if synonyms is None:
        raise ValueError("keyword_replacement needs a synonym table")
    constraints = [
        RepeatModification(),
        StopwordModification(),
        NoDuplicateWord(),
        NoNegationSwap(),  # an embedding neighbour may be an antonym: "incorrect" -> "correct"
        IntentCompatibility(cfg.min_gold_docs),
        AvoidDefiningWords(cfg.avoid_defining_words),
        PreserveGoldEvidence(cfg.preserve_top_evidence),
        MaxModificationRate(cfg.max_modification_rate),
    ]
    return KeywordSwap(synonyms), constraints, GreedySearch(cfg.max_replacements)


ATTACKS = KEYWORD_ATTACKS.names()


def attack_split(
    test: LabelledSplit, lexicon: Lexicon, kind: str, cfg: AttackConfig, synonyms: Synonyms | None = None
) -> datasets.Dataset:
    """Attack every test example with one recipe; deterministic given ``cfg.seed``."""
    if lexicon.label_names != list(test.label_names):
        raise AttackFileError("the training lexicon and the test split have different label lists")
    transformation, constraints, search = KEYWORD_ATTACKS.build(kind, cfg, synonyms)
    goal = LogOddsGoal()
    kind_id = KEYWORD_ATTACKS.names().index(kind)
    rows: dict[str, list] = {k: [] for k in ("id", "text", "original_text", "label", "target_label", "changed", "edits", "goal_gain")}
    for i, ex in enumerate(tqdm(test.dataset, desc=kind, leave=False)):
        # One generator per (seed, attack, example): results do not depend on order or batching.
        rng = np.random.default_rng([cfg.seed, kind_id, i])
        options = lexicon.confusable(ex["label"], top=cfg.confusable_top)
        target = options[int(rng.integers(0, len(options)))]
        ctx = AttackContext(lexicon, ex["label"], target, rng)
        state, gain = search.run(TextState.from_text(ex["text"]), ctx, goal, transformation, constraints)
        rows["id"].append(ex["id"])
        rows["text"].append(state.text)
        rows["original_text"].append(ex["text"])
        rows["label"].append(ex["label"])
        rows["target_label"].append(target)
        rows["changed"].append(bool(state.edits))
        rows["edits"].append(json.dumps([e.as_dict() for e in state.edits]))
        rows["goal_gain"].append(float(gain))
    return datasets.Dataset.from_dict(rows)


def build_attacks(
    train: LabelledSplit, test: LabelledSplit, cfg: AttackConfig | None = None, synonyms: Synonyms | None = None
) -> datasets.DatasetDict:
    """Derive the lexicon from ``train`` and attack ``test`` with every recipe in ``cfg.attacks``."""
    cfg = cfg or AttackConfig()
    if len(test) == 0:
        raise AttackFileError(f"{test.source}: the test split is empty; nothing to attack")
    if list(train.label_names) != list(test.label_names):
        raise AttackFileError(
            f"training split {train.source} and test split {test.source} have different label lists "
            f"({len(train.label_names)} vs {len(test.label_names)} labels)"
        )
    lexicon = build_lexicon(
        train.dataset["text"], train.dataset["label"], train.label_names,
        prior_scale=cfg.prior_scale, min_count=cfg.min_count, folds=cfg.folds, seed=cfg.seed,
    )
    log.info("attack lexicon: %s", lexicon.summary())
    if "keyword_replacement" in cfg.attacks and synonyms is None:
        synonyms = EmbeddingNeighbours.from_pretrained(cfg.synonym_model, lexicon.vocab, cfg.min_similarity)
    meta_base = {
        "format": FORMAT,
        "test_source": test.source,
        "test_fingerprint": fingerprint_split(test),
        "test_size": len(test),
        "label_names": list(test.label_names),
        "train_source": train.source,
        "lexicon": lexicon.summary(),
        "confusable_pairs": lexicon.confusable_pairs(10),
        "seed": cfg.seed,
        "params": asdict(cfg),
    }
    out = {}
    for kind in cfg.attacks:
        ds = attack_split(test, lexicon, kind, cfg, synonyms)
        n_changed = int(sum(ds["changed"]))
        log.info("%s: %d of %d test texts changed", kind, n_changed, len(ds))
        ds.info.description = json.dumps({**meta_base, "attack": kind, "n_changed": n_changed})
        out[kind] = ds
    return datasets.DatasetDict(out)


def attack_metadata(ds: datasets.Dataset) -> dict:
    """The metadata stored with one attacked split."""
    try:
        meta = json.loads(ds.info.description or "")
    except json.JSONDecodeError:
        meta = {}
    if meta.get("format") != FORMAT:
        raise AttackFileError("dataset has no eg-train attack metadata (was it built with `eg-eval attack`?)")
    return meta


def save_attacks(attacks: datasets.DatasetDict, path: str | Path, overwrite: bool = False) -> Path:
    """Write with ``save_to_disk``; an existing ``path`` is an error unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite true to replace it")
    with atomic_dir(path, replace=overwrite) as tmp:
        attacks.save_to_disk(str(tmp))
    return path


def load_attacks(path: str | Path, test: LabelledSplit, names: Sequence[str] | None = None) -> datasets.DatasetDict:
    """Load attack splits and check they were built for ``test`` (fingerprint and labels)."""
    path = Path(path)
    if not path.exists():
        raise AttackFileError(f"{path}: attack dataset not found; build it with `eg-eval attack`")
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:  # datasets raises FileNotFoundError or its own types
        raise AttackFileError(f"{path}: not a saved attack dataset ({err})") from err
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({attack_metadata(loaded).get("attack", "attack"): loaded})
    want = fingerprint_split(test)
    selected = {}
    for name in names or list(loaded):
        if name not in loaded:
            raise AttackFileError(f"{path}: no attack {name!r}; available: {sorted(loaded)}")
        ds = loaded[name]
        meta = attack_metadata(ds)
        if meta["label_names"] != list(test.label_names):
            raise AttackFileError(
                f"{path} [{name}]: built for a dataset with {len(meta['label_names'])} labels "
                f"(e.g. {meta['label_names'][:3]}), the test set has {len(test.label_names)} "
                f"(e.g. {list(test.label_names)[:3]}); rebuild it with `eg-eval attack`"
            )
        if meta["test_fingerprint"] != want or len(ds) != len(test):
            raise AttackFileError(
                f"{path} [{name}]: built for test set {meta['test_source']} ({meta['test_size']} rows, "
                f"fingerprint {meta['test_fingerprint']}), but the test set being evaluated is "
                f"{test.source} ({len(test)} rows, fingerprint {want}); rebuild it with `eg-eval attack`"
            )
        selected[name] = ds
    return datasets.DatasetDict(selected)
