"""The Banking77 5-shot experiment (issue 6): priors once, six variants x three seeds, full test set,
results in results/banking77_5shot.{md,json}. Any pipeline config works, e.g. the CLINC150 one:

    python scripts/run_experiment.py                                    # Banking77 5-shot
    python scripts/run_experiment.py --config configs/pipeline_clinc150_5shot.yaml

Same as ``eg-train pipeline --config ...``; steps whose outputs exist are skipped (resume).
"""

import sys

from eg_train.experiment.pipeline import main

if __name__ == "__main__":
    main(sys.argv[1:] or ["--config", "configs/pipeline_banking77_5shot.yaml"])
