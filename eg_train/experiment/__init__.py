"""Experiment stage: the end-to-end pipeline (priors -> training -> evaluation -> reports) and results tables."""
