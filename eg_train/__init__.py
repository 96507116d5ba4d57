"""eg-train: explanation-guided training of small text classifiers."""

__version__ = "0.1.0"
