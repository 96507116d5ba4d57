"""A prior depends on its example (and the configuration) only: sharded runs and cache-part sizes
give bit-identical scores (``==``, not a tolerance) on the real SmolLM2. Before, the scorer
batched the rows of all examples of a part together, so padding to a neighbour's length changed
float rounding (relative differences up to 8e-6 between a sharded and a single run)."""

from pathlib import Path

import numpy as np
import pytest

from eg_train.foundation.data import DataSpec
from priors.cache import PriorCache
from priors.compute import compute_priors
from priors.config import PriorsConfig, build_methods, load_examples

ROWS = [  # different lengths, so rows of different examples would pad each other in a shared batch
    ("my card is blocked after three wrong pins and the app will not let me in today", "pin_blocked"),
    ("how old must I be", "age_limit"),
    ("where is my new card, still waiting for it after two weeks", "card_arrival"),
    ("pin blocked", "pin_blocked"),
    ("is there a minimum age for kids to open an account with you", "age_limit"),
]
LABELS = ["card_arrival", "pin_blocked", "age_limit"]


def _run(csv: Path, cache: Path, *, parts: int, world: int, **kw) -> dict[str, np.ndarray]:
    spec = DataSpec(files={"train": str(csv)}, text_column="text", label_column="category", labels=LABELS)
    cfg = PriorsConfig(**{"llm": "smollm2-135m-instruct", "demonstrations_per_class": 0, "data": spec, "n_samples": 6,
                          "cache_dir": str(cache), **kw})
    split = load_examples(cfg)
    for method in build_methods(cfg, split.label_names, split):
        for rank in range(world):
            compute_priors(split, method, PriorCache(cache), batch_size=parts, rank=rank, world_size=world, progress=False)
    out = {}
    for name in cfg.methods:
        for i, s in zip(split.dataset["id"], PriorCache(cache).scores_for(split, name)):
            out[f"{name}:{i}"] = np.asarray(s)
    return out


@pytest.mark.parametrize(
    "options",
    [dict(methods=["lime", "cap"]), dict(methods=["cap"], contrast="top_m", contrast_m=1, calibrate=True)],
    ids=["raw", "top_m-calibrated"],
)
def test_sharded_run_equals_single_run_bit_for_bit(tmp_path, smollm, options):
    csv = tmp_path / "train.csv"
    csv.write_text("text,category\n" + "".join(f'"{t}",{c}\n' for t, c in ROWS), encoding="utf-8")
    # Same configuration; examples per cache part (1 vs 3) and shards (1 vs 2) differ, so each
    # example shares its part with different neighbours. scorer_batch_size is small enough that an
    # example's 6 rows need two chunks (the chunking is a function of the example alone).
    single = _run(csv, tmp_path / "single", parts=1, world=1, scorer_batch_size=4, **options)
    sharded = _run(csv, tmp_path / "sharded", parts=3, world=2, scorer_batch_size=4, **options)
    assert single.keys() == sharded.keys() and len(single) == len(ROWS) * len(options["methods"])
    for key in single:
        assert single[key].dtype == sharded[key].dtype
        assert (single[key] == sharded[key]).all(), key
        assert np.abs(single[key]).max() > 0
