import pytest

from triage_ml.errors import ConfigError
from triage_ml.pipeline.config import TrainConfig
from triage_ml.taxonomy import HEADS


def test_default_config_loads_and_round_trips():
    cfg = TrainConfig.from_yaml("training/configs/default.yaml")
    assert set(cfg.heads) == set(HEADS)
    # thresholds for real traffic, chosen on real-train's out-of-fold probabilities
    assert cfg.thresholds["crisis"].policy == "best_f1"
    assert cfg.thresholds["actionable"].policy == cfg.thresholds["priority_tier"].policy == "best_macro_f1"
    assert cfg.real_data is not None and cfg.real_data.select_on_real
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.flat_params()["heads.crisis.text_C"] == "10.0"
    assert cfg.finetune.enabled and cfg.calibration.refit_on_oof  # the default path fine-tunes


def test_typo_is_refused_with_the_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("cv_fold: 5\n")
    with pytest.raises(ConfigError, match="'cv_fold': Extra inputs are not permitted"):
        TrainConfig.from_yaml(path)


def test_bad_value_and_bad_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("heads:\n  default: {text_weight: 2}\n")
    with pytest.raises(ConfigError, match="text_weight"):
        TrainConfig.from_yaml(path)
    path.write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="invalid YAML at line"):
        TrainConfig.from_yaml(path)
    with pytest.raises(ConfigError, match="not found"):
        TrainConfig.from_yaml(tmp_path / "nope.yaml")
