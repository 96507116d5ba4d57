"""The shortcut robustness benchmark (issue 13): shortcut data, the pipeline on it (CE vs LIME, CAP,
IG, CAP Hybrid and a hybrid without the IG prior, 3 seeds), shortcut metrics of every model and prior,
results in results/shortcut_<dataset>_5shot.{md,json}. An alias of ``eg-train shortcut``:

    python scripts/run_shortcut.py --config configs/shortcut_banking77_5shot.yaml
    python scripts/run_shortcut.py --config configs/shortcut_clinc150_5shot_15intents.yaml   # CLINC150, first 15 intents
    python scripts/run_shortcut.py --config configs/shortcut_clinc150_5shot.yaml             # all 150 intents (> 3 h on 2 cores)
    python scripts/run_shortcut.py --config ... --skip_pipeline true    # evaluate the models trained so far
    python scripts/run_shortcut.py --config configs/shortcut_banking77_5shot_8intents_select.yaml   # choose a recipe on validation only

Steps whose outputs exist are skipped (resume).
"""

import sys

from eg_train.cli import main

if __name__ == "__main__":  # an alias of `eg-train shortcut`
    raise SystemExit(main(["shortcut", *(sys.argv[1:] or ["--config", "configs/shortcut_banking77_5shot.yaml"])]))
