"""LightningDataModule: splits, few-shot sampling, tokenisation with word ids, fused priors.

Training examples are ``SampleSpec(data, k_shot, seed).sample(train)`` (the same spec the prior
stage samples with, so the cached priors cover them); the validation split is the source's own when it has
one, else ``val_per_class`` examples per class carved (seeded) from the training examples that
were not sampled. Every example is tokenised with character offsets, and each token is mapped
to the word of :func:`eg_train.foundation.words.split_words` it belongs to, so token attributions sum to
exactly the words the priors score.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field, fields
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from eg_train.foundation.data.fewshot import SampleSpec, carve_per_class
from eg_train.foundation.data.source import PENALTY_COLUMN, DataError, DataSpec, LabelledSplit, load_split
from eg_train.foundation.errors import ConfigError
from eg_train.foundation.encoding import encode_dataset, pad_sequences

log = logging.getLogger(__name__)


ON_MISSING = ("error", "skip")


@dataclass
class PriorSpec:
    """Which fused prior to attach to the training examples (read from the prior cache).

    ``on_missing``: ``error`` (default) when a training example has no cached prior, or ``skip``:
    that example trains with CE only (the coverage is logged).

    Attributes:
        cache_dir: the prior cache folder (``eg-priors compute --cache_dir``).
        methods: the cached methods to fuse (``lime``, ``cap``, ``ig``).
        normalisation: per-example normalisation before fusing (``minmax``, ``l1``, ``softmax``).
        fusion: how the normalised priors combine (``mean``, ``max``).
    """

    cache_dir: str
    methods: list[str] = field(default_factory=lambda: ["lime", "cap", "ig"])
    normalisation: str = "minmax"
    fusion: str = "mean"
    on_missing: str = "error"

    def __post_init__(self) -> None:
        # A typo ("skpi", "warn") must not silently train examples without their prior.
        if self.on_missing not in ON_MISSING:
            raise ConfigError(f"prior.on_missing must be one of {list(ON_MISSING)}, got {self.on_missing!r}")
        if isinstance(self.methods, str):
            self.methods = [self.methods]
        if not self.methods:
            raise ConfigError("prior.methods is empty; name the cached methods to fuse (e.g. [lime, cap, ig])")


def parse_prior(prior: PriorSpec | dict | str | None) -> PriorSpec | None:
    """``none`` / None (the CE baseline), a mapping or a :class:`PriorSpec` -> a validated spec or None."""
    if prior is None or (isinstance(prior, str) and prior.strip().lower() == "none"):
        return None
    if isinstance(prior, dict):
        unknown = sorted(set(prior) - {f.name for f in fields(PriorSpec)})
        if unknown:
            raise ConfigError(f"prior: unknown option(s) {unknown}; known: {[f.name for f in fields(PriorSpec)]}")
        return PriorSpec(**prior)
    if isinstance(prior, PriorSpec):
        return PriorSpec(**{f.name: getattr(prior, f.name) for f in fields(PriorSpec)})  # re-validated
    raise ConfigError(f"prior must be 'none' or a mapping with cache_dir/methods/..., got {prior!r}")


_parse_prior = parse_prior  # the name used before the typed API


def with_penalty_positions(split: LabelledSplit, path: str) -> LabelledSplit:
    """``split`` with its ``penalty_words`` column taken from the ``positions`` of the JSON file ``path``
    (entries ``{fingerprint, positions}``; texts without an entry get none)."""
    import json
    from pathlib import Path

    from eg_train.foundation.words import text_fingerprint

    file = Path(path)
    if not file.is_file():
        raise DataError(f"data.penalty_positions: {file} not found (an audit.json with a 'positions' list)")
    try:
        entries = json.loads(file.read_text(encoding="utf-8"))["positions"]
        by_fp = {str(e["fingerprint"]): [int(k) for k in e["positions"]] for e in entries}
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{file}: expected a JSON object with 'positions': [{{fingerprint, positions}}, ...] ({err})") from None
    column = [by_fp.get(text_fingerprint(t), []) for t in split.dataset["text"]]
    ds = split.dataset.remove_columns([PENALTY_COLUMN]) if PENALTY_COLUMN in split.dataset.column_names else split.dataset
    log.info("%s: penalty positions for %d of %d training texts", file, sum(bool(c) for c in column), len(column))
    return LabelledSplit(ds.add_column(PENALTY_COLUMN, column), split.label_names, split.source, split.skipped)


class EncodedDataset(torch.utils.data.Dataset):
    """Tokenised examples with word ids, (optionally) one fused prior per example, and the
    ``penalty_words`` of a split that has that column (the targeted penalty's word indices)."""

    def __init__(self, split: LabelledSplit, tokenizer, max_length: int, priors: list[np.ndarray | None] | None = None):
        enc = encode_dataset(split.dataset, tokenizer, max_length)  # word ids via the foundation
        self.items: list[dict[str, Any]] = []
        if len(enc) == 0:
            return
        cols = enc.to_dict()  # python lists, one conversion per column
        types = cols.get("token_type_ids")
        penalty = cols.get(PENALTY_COLUMN)
        for i in range(len(enc)):
            item = {
                "id": cols["id"][i],
                "input_ids": cols["input_ids"][i],
                "attention_mask": cols["attention_mask"][i],
                "special_tokens_mask": cols["special_tokens_mask"][i],
                "word_ids": cols["word_ids"][i],
                "n_words": int(cols["n_words"][i]),
                "label": int(cols["label"][i]),
                "prior": None,
            }
            if types is not None:
                item["token_type_ids"] = types[i]
            if penalty is not None:
                words = [int(k) for k in penalty[i]]
                if any(not 0 <= k < item["n_words"] for k in words):
                    raise DataError(f"{split.source}: example {item['id']!r}: penalty_words {words} outside its "
                                    f"{item['n_words']} words")
                item["penalty_words"] = words
            if priors is not None and priors[i] is not None:
                if len(priors[i]) != item["n_words"]:
                    raise DataError(
                        f"{split.source}: example {item['id']!r}: prior has {len(priors[i])} scores for {item['n_words']} words"
                    )
                item["prior"] = np.asarray(priors[i], dtype=np.float32)
            self.items.append(item)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


def collate(items: list[dict[str, Any]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad a list of encoded examples to the longest one (tokens) and the most words (priors);
    ``penalty_mask`` (``[b, w]``, words to penalise) when an example has ``penalty_words``."""
    t = max(len(it["input_ids"]) for it in items)
    w = max(max(it["n_words"], 1) for it in items)
    b = len(items)

    def pad(key: str, value: int) -> torch.Tensor:
        return pad_sequences([it[key] for it in items], value, t)

    batch = {
        "input_ids": pad("input_ids", pad_token_id),
        "attention_mask": pad("attention_mask", 0),
        "special_tokens_mask": pad("special_tokens_mask", 1),
        "word_ids": pad("word_ids", -1),
        "labels": torch.tensor([it["label"] for it in items], dtype=torch.long),
    }
    if "token_type_ids" in items[0]:
        batch["token_type_ids"] = pad("token_type_ids", 0)
    # Only words that kept at least one token after truncation take part in the alignment.
    word_mask = torch.zeros(b, w, dtype=torch.bool)
    for r, it in enumerate(items):
        ids = [x for x in it["word_ids"] if x >= 0]
        if ids:
            word_mask[r, torch.tensor(sorted(set(ids)))] = True
    prior = torch.zeros(b, w)
    has_prior = torch.zeros(b, dtype=torch.bool)
    for r, it in enumerate(items):
        if it["prior"] is not None:
            prior[r, : it["n_words"]] = torch.from_numpy(it["prior"])
            has_prior[r] = True
    batch.update(word_mask=word_mask, prior=prior, has_prior=has_prior)
    if any("penalty_words" in it for it in items):
        penalty_mask = torch.zeros(b, w, dtype=torch.bool)
        for r, it in enumerate(items):
            if it.get("penalty_words"):
                penalty_mask[r, torch.tensor(it["penalty_words"])] = True
        batch["penalty_mask"] = penalty_mask
    return batch


@dataclass
class DataOptions:
    """What the training stage reads: the training sample (shared with the prior stage) and loaders.

    ``val_per_class`` examples per class are carved (seeded) from the training examples outside the
    sample when the source has no validation split; when none are left (a file with exactly
    ``k_shot`` texts per class) training runs without validation, with a warning, and
    ``checkpoints/best.ckpt`` is the last epoch.

    Attributes:
        sample: the training examples (shared with the prior stage).
    """

    sample: SampleSpec = field(default_factory=SampleSpec)
    val_per_class: int = 2
    max_length: int = 128
    batch_size: int = 32
    eval_batch_size: int = 64
    num_workers: int = 0
    test_split: str = "test"
    # A JSON file whose ``positions`` list (``[{fingerprint, positions}]``, e.g. an ``audit.json``)
    # gives the word indices of the targeted penalty (``model.penalty_weight``) per training text.
    penalty_positions: str | None = None


# The data-source options every tool spells the same way (``--data.files``, ``--data.label_column``, ...).
DATA_SPEC_FIELDS = tuple(f.name for f in fields(DataSpec))


class EGDataModule(L.LightningDataModule):
    """Banking77 / CLINC150 / any labelled text files, with optional fused priors.

    The data-source arguments are those of :class:`DataSpec` (``preset``, ``files``,
    ``text_column``, ``label_column``, ``labels``, ``labels_file``, ``classes``, ``skip_invalid``,
    ...): ``eg-train fit --data.files '{train: f.csv}' --data.label_column category``, as for
    ``eg-priors`` and ``eg-eval``. Without ``preset``, ``hub`` or ``files`` the preset is ``banking77``.

    Args:
        preset: a named dataset (``banking77``, ``clinc150``; offline from the local copy);
            ``banking77`` when neither preset, files nor hub is given.
        files: split name -> local csv / json / jsonl / parquet file (overrides the preset's files).
        text_column: the column holding the text (None: the preset's, else ``text``).
        label_column: the column holding the label (None: the preset's, else ``label``).
        labels: the label list, in id order (default: the file's sorted labels).
        labels_file: a JSON file holding the label list.
        classes: keep only these labels (or the first N).
        skip_invalid: skip (and report) invalid rows instead of stopping at the first.
        format: csv | json | jsonl | parquet | clinc_json (default: from the file suffix).
        hub: a Hugging Face dataset id (when neither files nor a local preset copy exist).
        hub_config: the hub dataset's configuration name.
        model_name: the SLM whose tokenizer is used (linked from ``model.model_name`` by the CLI).
        k_shot: examples per class for training; None trains on the whole training split.
        seed: the seed of the k-shot sample (the prior stage's ``sample_seed``).
        val_per_class: validation examples per class carved from the unused training examples
            when the source has no validation split (0 disables validation; when no example is
            left over, training runs without validation, with a warning).
        max_length: tokens per example (longer texts are truncated; their tail words get no attribution).
        batch_size: training batch size.
        eval_batch_size: validation / test batch size.
        prior: ``none`` (CE baseline) or a :class:`PriorSpec` (cache_dir, methods, ...).
        num_workers: DataLoader worker processes.
        test_split: the split ``eg-train test`` evaluates.
        penalty_positions: a JSON file listing, per training text (matched by its text fingerprint),
            the word indices of the targeted penalty (``model.penalty_weight``): its ``positions``
            entries ``{fingerprint, positions}``, as ``eg-eval audit`` writes them for the features it
            confirmed. Replaces a ``penalty_words`` column of the data.
    """

    def __init__(
        self,
        preset: str | None = None,
        files: dict[str, str] | None = None,
        text_column: str | None = None,
        label_column: str | None = None,
        labels: list[str] | None = None,
        labels_file: str | None = None,
        classes: list[str] | int | None = None,
        skip_invalid: bool = False,
        format: str | None = None,
        hub: str | None = None,
        hub_config: str | None = None,
        model_name: str = "all-minilm-l6-v2",
        k_shot: int | None = None,
        val_per_class: int = 2,
        seed: int = 0,
        max_length: int = 128,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        prior: PriorSpec | str | None = None,
        num_workers: int = 0,
        test_split: str = "test",
        penalty_positions: str | None = None,
    ) -> None:
        super().__init__()
        if preset is None and hub is None and not files:
            preset = "banking77"
        self.spec = DataSpec(
            preset=preset, hub=hub, hub_config=hub_config, files=dict(files or {}), format=format,
            text_column=text_column, label_column=label_column, labels=labels, labels_file=labels_file,
            classes=classes, skip_invalid=skip_invalid,
        )
        if k_shot is not None and k_shot < 1:
            raise ConfigError(f"data.k_shot must be >= 1 or null (the whole split), got {k_shot}")
        if val_per_class < 0:
            raise ConfigError(f"data.val_per_class must be >= 0, got {val_per_class}")
        self.sample = SampleSpec(data=self.spec, k_shot=k_shot, seed=seed)
        self.model_name = model_name
        self.k_shot = k_shot
        self.val_per_class = val_per_class
        self.seed = seed
        self.max_length = max_length
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.prior = parse_prior(prior)
        self.num_workers = num_workers
        self.test_split = test_split
        self.penalty_positions = penalty_positions
        self._full_train: LabelledSplit | None = None
        self._tokenizer = None
        self.splits: dict[str, LabelledSplit] = {}
        self.datasets: dict[str, EncodedDataset] = {}
        self.prior_coverage: tuple[int, int] | None = None

    @classmethod
    def from_spec(cls, spec: DataSpec, **kwargs: Any) -> "EGDataModule":
        """A data module reading ``spec`` (the other arguments as for the constructor)."""
        return cls(**{name: getattr(spec, name) for name in DATA_SPEC_FIELDS}, **kwargs)

    @classmethod
    def from_options(cls, options: DataOptions, prior: PriorSpec | str | None = None,
                     model_name: str = "all-minilm-l6-v2") -> "EGDataModule":
        """The data module of the typed API (:class:`eg_train.training.config.TrainConfig`)."""
        s = options.sample
        if s.split != "train":
            raise ConfigError(f"the training sample must come from the 'train' split, got {s.split!r}")
        return cls.from_spec(
            s.data, model_name=model_name, k_shot=s.k_shot, seed=s.seed, val_per_class=options.val_per_class,
            max_length=options.max_length, batch_size=options.batch_size, eval_batch_size=options.eval_batch_size,
            prior=prior, num_workers=options.num_workers, test_split=options.test_split,
            penalty_positions=options.penalty_positions,
        )

    @property
    def has_validation(self) -> bool:
        """Whether :meth:`setup` found or carved a non-empty validation split."""
        return "validation" in self.datasets

    # -- lazily loaded pieces ----------------------------------------------------------------
    @property
    def full_train(self) -> LabelledSplit:
        if self._full_train is None:
            self._full_train = self.sample.load_full()
        return self._full_train

    @property
    def label_names(self) -> list[str]:
        """The dataset's label names, in label-id order (linked to the model's head)."""
        return list(self.full_train.label_names)

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            from eg_train.foundation.models import resolve_model

            self._tokenizer = AutoTokenizer.from_pretrained(resolve_model(self.model_name).location)
        return self._tokenizer

    def _has_source_split(self, name: str) -> bool:
        from eg_train.foundation.data.source import resolve_preset

        spec, _ = resolve_preset(self.spec)
        return name in spec.files  # hub datasets: carve from train (split names vary by dataset)

    # -- Lightning hooks ------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and "train" not in self.splits:
            self._setup_train_val()
        if stage in (None, "test") and "test" not in self.splits:
            split = load_split(self.spec, self.test_split)
            self._check_labels(split)
            self.splits["test"] = split
            self.datasets["test"] = EncodedDataset(split, self.tokenizer, self.max_length)

    def _check_labels(self, split: LabelledSplit) -> None:
        if list(split.label_names) != self.label_names:
            raise DataError(f"{split.source}: label list differs from the training split's; pass data.labels explicitly")

    def train_validation(self) -> tuple[LabelledSplit, LabelledSplit | None]:
        """The training examples and the validation split training uses (the source's own validation
        split, else ``val_per_class`` texts per class carved from the unsampled ones; None: none)."""
        full = self.full_train
        train = self.sample.sample(full)  # the examples the prior stage scored
        val = None
        if self._has_source_split("validation"):
            val = load_split(self.spec, "validation")
            self._check_labels(val)
        elif self.val_per_class > 0:
            used = set(list(train.dataset["id"])) if self.k_shot else set()
            val, rest = carve_per_class(full, self.val_per_class, self.seed + 1, exclude=used)
            if not self.k_shot:
                train = rest
            val = self._checked_carve(val, full)
        return train, val

    def _setup_train_val(self) -> None:
        train, val = self.train_validation()
        if self.penalty_positions is not None:
            train = with_penalty_positions(train, self.penalty_positions)
        priors = None
        if self.prior is not None:
            from priors.cache import load_fused_priors

            priors = load_fused_priors(
                self.prior.cache_dir,
                train,
                self.prior.methods,
                normalisation=self.prior.normalisation,
                fusion=self.prior.fusion,
                on_missing=self.prior.on_missing,
            )
            covered = sum(p is not None for p in priors)
            self.prior_coverage = (covered, len(priors))
            # A partial coverage (on_missing: skip) trains those examples with CE only: say so loudly.
            level = logging.INFO if covered == len(priors) else logging.WARNING
            log.log(level, "fused %s priors attached to %d of %d training examples", "+".join(self.prior.methods), covered, len(priors))
            if covered == 0:
                raise DataError(f"{self.prior.cache_dir}: no training example has a prior; check the cache and the sampling seed")
        self.splits["train"] = train
        self.datasets["train"] = EncodedDataset(train, self.tokenizer, self.max_length, priors)
        if val is not None:
            self.splits["validation"] = val
            self.datasets["validation"] = EncodedDataset(val, self.tokenizer, self.max_length)
        log.info("train %d examples, validation %d", len(train), len(val) if val is not None else 0)

    def _checked_carve(self, val: LabelledSplit, full: LabelledSplit) -> LabelledSplit | None:
        """The carved validation split, or None (with a warning) when no example was left for it."""
        if len(val) == 0:
            log.warning(
                "%s: no example is left for validation (every one of the %d training texts is in the %s-shot "
                "sample, val_per_class=%d): training without validation; checkpoints/best.ckpt will be the "
                "last epoch. Add texts, lower data.k_shot, or set data.val_per_class 0 to silence this.",
                full.source, len(full), self.k_shot, self.val_per_class,
            )
            return None
        counts = np.bincount(np.asarray(val.dataset["label"]), minlength=len(full.label_names))
        short = [full.label_names[c] for c in np.flatnonzero(counts < self.val_per_class)]
        if short:
            log.warning("validation has fewer than %d examples for %d classes (e.g. %s): too few texts outside "
                        "the sample", self.val_per_class, len(short), short[:3])
        return val

    def _loader(self, name: str, batch_size: int, shuffle: bool) -> DataLoader:
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        return DataLoader(
            self.datasets[name],
            batch_size=batch_size,
            shuffle=shuffle,
            collate_fn=functools.partial(collate, pad_token_id=pad),
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("validation", self.eval_batch_size, shuffle=False) if "validation" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)
