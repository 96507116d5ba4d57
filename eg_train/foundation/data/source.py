"""Resolve and load a labelled text-classification split.

Resolution order (one command works everywhere):
1. an explicit ``path`` (csv / json / jsonl / parquet file, or the CLINC150 ``data_full.json``);
2. the local copy of a named preset: ``$EG_TRAIN_DATA_DIR`` or a ``shared/data`` folder found
   next to the working directory or the repository (``../shared/data`` here);
3. the preset's hub name (``PolyAI/banking77``) through ``datasets.load_dataset``.

Every row is validated: empty text, unknown label, missing column or a non-UTF-8 file is a
:class:`DataError` that names the file, the row and what was expected.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import datasets

from eg_train.foundation.errors import UserError

log = logging.getLogger(__name__)

# An optional column of a data file: per text, the word indices (of split_words) that the training
# penalty ``model.penalty_weight`` acts on; carried through to the training examples.
PENALTY_COLUMN = "penalty_words"


class DataError(UserError, ValueError):
    """Bad input data: the message names the file, the row and the expectation."""


@dataclass
class DataSpec:
    """Where a dataset comes from and how its columns map to ``text`` / ``label``.

    ``preset`` names a known dataset (``banking77``, ``clinc150``); any field set explicitly
    overrides the preset. ``files`` maps split name to a local file. ``text_column`` and
    ``label_column`` left unset (None) are the preset's columns, else ``text`` and ``label``.
    """

    preset: str | None = None
    hub: str | None = None
    hub_config: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    format: str | None = None  # csv | json | jsonl | parquet | clinc_json (inferred from suffix)
    text_column: str | None = None  # None: the preset's, else "text"
    label_column: str | None = None  # None: the preset's, else "label"
    labels: list[str] | None = None
    labels_file: str | None = None
    classes: list[str] | int | None = None  # keep only these labels (or the first N): quick runs
    skip_invalid: bool = False


PRESETS: dict[str, dict[str, Any]] = {
    "banking77": {
        "hub": "PolyAI/banking77",
        "local_dir": "banking77",
        "files": {"train": "train.csv", "test": "test.csv"},
        "text_column": "text",
        "label_column": "category",
        "labels_file": "categories.json",
        "hub_label_column": "label",
    },
    "clinc150": {
        "hub": "clinc_oos",
        "hub_config": "plus",
        "local_dir": "clinc150",
        "files": {"train": "data_full.json", "validation": "data_full.json", "test": "data_full.json"},
        "format": "clinc_json",
        "text_column": "text",
        "label_column": "intent",
        "hub_label_column": "intent",
    },
}


@dataclass
class LabelledSplit:
    """A validated split: ``dataset`` has columns ``id`` (str), ``text`` (str), ``label`` (int)."""

    dataset: datasets.Dataset
    label_names: list[str]
    source: str
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.dataset)


def shared_data_dir() -> Path | None:
    """The local offline data folder, if any (``$EG_TRAIN_DATA_DIR`` or a ``shared/data`` nearby)."""
    env = os.environ.get("EG_TRAIN_DATA_DIR")
    if env:
        return Path(env)
    repo_root = Path(__file__).resolve().parents[3]
    for base in (Path.cwd(), repo_root):
        for cand in (base / "../shared/data", base / "shared/data"):
            if cand.is_dir():
                return cand.resolve()
    return None


def _columns(spec: DataSpec, text: str, label: str) -> dict[str, str]:
    """Column names: the explicitly set ones win over ``text`` / ``label`` (the preset's)."""
    return {
        "text_column": spec.text_column if spec.text_column is not None else text,
        "label_column": spec.label_column if spec.label_column is not None else label,
    }


def resolve_preset(spec: DataSpec) -> tuple[DataSpec, str | None]:
    """Fill a spec from its preset; return (spec, local_dir or None when the hub is needed).

    Fields set explicitly (files, format, columns, labels_file, hub) win over the preset's.
    """
    if spec.preset is None:
        return replace(spec, **_columns(spec, "text", "label")), None
    if spec.preset not in PRESETS:
        raise DataError(f"unknown dataset preset {spec.preset!r}; known: {sorted(PRESETS)}")
    p = PRESETS[spec.preset]
    base = shared_data_dir()
    local = base / p["local_dir"] if base is not None else None
    if spec.files:  # explicit files replace the preset entirely (its columns and its name too)
        return replace(spec, preset=None, **_columns(spec, "text", "label")), None
    if local is not None and local.is_dir():
        labels_file = spec.labels_file or (str(local / p["labels_file"]) if "labels_file" in p else None)
        filled = replace(
            spec,
            files={k: str(local / v) for k, v in p["files"].items()},
            format=spec.format or p.get("format"),
            labels_file=labels_file,
            **_columns(spec, p["text_column"], p["label_column"]),
        )
        return filled, str(local)
    filled = replace(
        spec,
        hub=spec.hub or p["hub"],
        hub_config=spec.hub_config or p.get("hub_config"),
        **_columns(spec, p["text_column"], p["hub_label_column"]),
    )
    return filled, None


def _infer_format(path: str, declared: str | None) -> str:
    if declared:
        return declared
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in {"csv", "json", "jsonl", "parquet"}:
        return suffix
    raise DataError(f"{path}: cannot infer the file format from suffix {suffix!r}; set format: csv|json|jsonl|parquet")


def _check_utf8(path: str) -> None:
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}: not valid UTF-8 at byte {err.start} (line {line}); re-encode the file as UTF-8"
        ) from None


def _read_clinc(path: str, split: str) -> datasets.Dataset:
    _check_utf8(path)
    with open(path, encoding="utf-8") as fh:
        payload = json.load(fh)
    if split not in payload:
        raise DataError(f"{path}: no split {split!r}; available: {sorted(payload)}")
    rows = payload[split]
    bad = [i for i, r in enumerate(rows) if not (isinstance(r, list) and len(r) == 2)]
    if bad:
        raise DataError(f"{path}: split {split!r} row {bad[0]}: expected a [text, intent] pair, got {rows[bad[0]]!r}")
    return datasets.Dataset.from_dict({"text": [r[0] for r in rows], "intent": [r[1] for r in rows]})


def _read_file(path: str, fmt: str, split: str) -> datasets.Dataset:
    if not Path(path).is_file():
        raise DataError(f"{path}: file not found (split {split!r})")
    if fmt == "clinc_json":
        return _read_clinc(path, split if split != "validation" else "val")
    if fmt in {"csv", "json", "jsonl"}:
        _check_utf8(path)
    builder = {"csv": "csv", "json": "json", "jsonl": "json", "parquet": "parquet"}[fmt]
    if fmt in {"csv", "jsonl"} and _text_lines(path) <= (1 if fmt == "csv" else 0):
        # datasets would say 'Instruction "train" corresponds to no data!'
        raise DataError(f"{path}: no data rows" + (" (a header at most)" if fmt == "csv" else ""))
    try:
        ds = datasets.load_dataset(builder, data_files={split: path}, split=split)
    except Exception as err:  # datasets wraps parser errors in its own types
        raise DataError(f"{path}: could not be read as {fmt}: {err.__cause__ or err}") from err
    if len(ds) == 0:
        raise DataError(f"{path}: no data rows")
    return ds


def _text_lines(path: str, at_most: int = 2) -> int:
    """Non-blank lines in a text file, counted up to ``at_most`` (enough to tell 'no data rows')."""
    n = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            n += bool(line.strip())
            if n >= at_most:
                break
    return n


def _load_labels(spec: DataSpec) -> list[str] | None:
    if spec.labels is not None:
        return list(spec.labels)
    if spec.labels_file:
        with open(spec.labels_file, encoding="utf-8") as fh:
            labels = json.load(fh)
        if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
            raise DataError(f"{spec.labels_file}: expected a JSON list of label names")
        return labels
    return None


def load_split(spec: DataSpec, split: str) -> LabelledSplit:
    """Load and validate one split (``train``, ``validation`` or ``test``)."""
    spec, local_dir = resolve_preset(spec)
    if spec.files:
        if split not in spec.files:
            raise DataError(f"no file for split {split!r}; configured splits: {sorted(spec.files)}")
        source = spec.files[split]
        raw = _read_file(source, _infer_format(source, spec.format), split)
        log.info("dataset %s split %s: local file %s (%d rows)", spec.preset or "custom", split, source, len(raw))
    elif spec.hub:
        source = f"hub:{spec.hub}" + (f"/{spec.hub_config}" if spec.hub_config else "")
        log.info("dataset %s split %s: loading from the hub (%s)", spec.preset or "custom", split, source)
        try:
            raw = datasets.load_dataset(spec.hub, spec.hub_config, split=split)
        except ConnectionError as err:
            raise DataError(
                f"{source}: the hub is unreachable and no local copy of {spec.preset or spec.hub!r} was found "
                "(looked in $EG_TRAIN_DATA_DIR, ./shared/data and ../shared/data); set EG_TRAIN_DATA_DIR "
                f"or pass data.files ({err})"
            ) from err
    else:
        raise DataError("dataset spec has neither files, a preset nor a hub name")

    for col in (spec.text_column, spec.label_column):
        if col not in raw.column_names:
            raise DataError(f"{source}: missing column {col!r}; columns are {raw.column_names}")

    feature = raw.features[spec.label_column]
    labels = _load_labels(spec)
    if isinstance(feature, datasets.ClassLabel):
        hub_names = list(feature.names)
        raw_labels = [hub_names[i] for i in raw[spec.label_column]]
        labels = labels or hub_names
    else:
        raw_labels = [str(v) if v is not None else None for v in raw[spec.label_column]]
    if labels is None:
        labels = sorted({lab for lab in raw_labels if lab is not None})
    kept_labels = _select_classes(labels, spec.classes, source)
    index = {name: i for i, name in enumerate(kept_labels)}

    header_offset = 2 if source.endswith(".csv") else 0
    ids, texts, ys, skipped, kept_rows = [], [], [], [], []
    for row, (text, lab) in enumerate(zip(raw[spec.text_column], raw_labels)):
        where = f"{source}: row {row}" + (f" (line {row + header_offset})" if header_offset else "")
        problem = None
        if not isinstance(text, str) or not text.strip():
            problem = f"{where}: empty or whitespace-only text in column {spec.text_column!r}"
        elif spec.classes is not None and lab in labels and lab not in index:
            continue  # outside the selected classes: not an error
        elif lab not in index:
            problem = f"{where}: label {lab!r} is not in the label list ({len(labels)} labels, e.g. {labels[:3]})"
        if problem:
            if not spec.skip_invalid:
                raise DataError(problem + "; fix the row or pass skip_invalid=true to skip it")
            skipped.append(problem)
            continue
        ids.append(f"{split}-{row}")
        texts.append(text)
        ys.append(index[lab])
        kept_rows.append(row)
    if skipped:
        log.warning("skipped %d invalid rows in %s (first: %s)", len(skipped), source, skipped[0])
    if not ids:
        raise DataError(f"{source}: split {split!r} has no valid rows")
    columns = {"id": ids, "text": texts, "label": ys}
    if PENALTY_COLUMN in raw.column_names:  # word indices of a targeted penalty (model.penalty_weight)
        column = raw[PENALTY_COLUMN]
        columns[PENALTY_COLUMN] = [[int(k) for k in (column[r] or [])] for r in kept_rows]
    ds = datasets.Dataset.from_dict(columns)
    return LabelledSplit(dataset=ds, label_names=kept_labels, source=source, skipped=skipped)


def _select_classes(labels: list[str], classes: list[str] | int | None, source: str) -> list[str]:
    if classes is None:
        return labels
    if isinstance(classes, int):
        if not 1 <= classes <= len(labels):
            raise DataError(f"{source}: classes={classes} but the dataset has {len(labels)} labels")
        return labels[:classes]
    unknown = [c for c in classes if c not in labels]
    if unknown:
        raise DataError(f"{source}: selected classes {unknown} are not in the label list (e.g. {labels[:3]})")
    return list(classes)


def readable_label(name: str) -> str:
    """``card_arrival`` -> ``card arrival`` (docs/design.md#words)."""
    return name.replace("_", " ").strip()
