"""The pipeline's one ``precision`` key reaches every stage."""

from eg_train.experiment.pipeline import PipelineConfig, TrainedVariant, train_config
from eg_train.experiment.prior_jobs import prior_config
from eg_train.foundation.data import DataSpec


def _cfg(tmp_path, tiny_spec, precision):
    return PipelineConfig(out_dir=str(tmp_path / "out"), data=DataSpec(**tiny_spec), k_shot=2,
                          train_config="configs/demo.yaml", precision=precision,
                          variants=[TrainedVariant("ce"), TrainedVariant("cap", ["cap"], recipe="fixed")])


def test_precision_reaches_training_and_priors(tmp_path, tiny_spec):
    bf16 = _cfg(tmp_path, tiny_spec, "bf16")
    assert train_config(bf16, bf16.variants[1], 0, tmp_path / "cache", tmp_path / "run").trainer.precision == "bf16-mixed"
    assert prior_config(bf16, ["cap"]).dtype == "bf16"
    fp32 = _cfg(tmp_path, tiny_spec, "fp32")
    assert train_config(fp32, fp32.variants[1], 0, tmp_path / "cache", tmp_path / "run").trainer.precision is None
    assert prior_config(fp32, ["cap"]).dtype == "fp32"


def test_a_train_mapping_s_own_precision_wins(tmp_path, tiny_spec):
    cfg = _cfg(tmp_path, tiny_spec, "bf16")
    cfg.train = {"trainer": {"precision": "32-true"}}
    assert train_config(cfg, cfg.variants[0], 0, None, tmp_path / "run").trainer.precision == "32-true"
