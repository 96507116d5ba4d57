"""Training stage: the Lightning module and data module, the typed ``fit`` API and ``eg-train fit``."""
