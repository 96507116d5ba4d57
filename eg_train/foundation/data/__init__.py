"""Dataset resolution and loading (local files, the shared offline copy, or the hub), few-shot samples."""

from eg_train.foundation.data.fewshot import SampleSpec, sample_k_per_class
from eg_train.foundation.data.source import DataError, DataSpec, LabelledSplit, load_split, resolve_preset

__all__ = ["DataError", "DataSpec", "LabelledSplit", "SampleSpec", "load_split", "resolve_preset", "sample_k_per_class"]
