"""The shared foundation of every stage: words, data sources, few-shot sampling, model resolution,
word-level attribution. It imports neither :mod:`priors` nor the training / evaluation / experiment
stages, so both stages can build on it."""
