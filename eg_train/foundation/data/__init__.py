"""Dataset resolution and loading (local files, the shared offline copy, or the hub)."""

from eg_train.foundation.data.source import DataError, DataSpec, LabelledSplit, load_split, resolve_preset

__all__ = ["DataError", "DataSpec", "LabelledSplit", "load_split", "resolve_preset"]
