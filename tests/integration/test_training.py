"""Training against a real MLflow store and registry: logging, registration, the promotion gate."""

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import SMALL_CONFIG
from triage_ml.data import load_labeled
from triage_ml.pipeline.config import TrainConfig
from triage_ml.pipeline.tracking import configure_mlflow, train_and_log
from triage_ml.pipeline.train import train
from triage_ml.taxonomy import HEADS

pytestmark = pytest.mark.integration


def test_first_model_is_logged_registered_and_champion(trained_store):
    settings, outcome = trained_store
    client = configure_mlflow(settings)
    assert outcome.version == "1" and outcome.gate.promote
    assert str(client.get_model_version_by_alias("triage-ml", "champion").version) == "1"
    run = client.get_run(outcome.run_id)
    assert run.data.params["data_hash"] == outcome.result.data_hash
    assert run.data.params["heads.crisis.text_C"] == "10.0"
    for head in HEADS:
        for key in ("macro_f1", "pr_auc", "brier", "threshold"):
            assert f"{head}.{key}" in run.data.metrics
    assert run.data.metrics["crisis.recall_at_threshold"] >= 0.9  # the policy's floor, out of fold
    artifacts = {a.path for a in client.list_artifacts(outcome.run_id)}
    assert {"train_config.yaml", "cv_metrics.json", "oof_predictions.json", "oof_predictions.parquet",
            "promotion_gate.json", "plots"} <= artifacts
    plots = {a.path for a in client.list_artifacts(outcome.run_id, "plots")}
    assert len(plots) == 9 and all(p.endswith(".png") for p in plots)


def test_gate_refuses_a_worse_model_and_keeps_the_champion(trained_store, seed_subset):
    settings, _ = trained_store
    weak = TrainConfig.from_dict({**SMALL_CONFIG, "heads": {"default": {"text_weight": 1.0, "text_C": 0.001}}})
    outcome = train_and_log([seed_subset], weak, settings, progress=False)
    client = MlflowClient()
    assert not outcome.gate.promote
    assert any("macro F1" in r and "< champion" in r for r in outcome.gate.reasons)
    assert str(client.get_model_version_by_alias("triage-ml", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("triage-ml", "challenger").version) == outcome.version


def test_champion_is_cross_validated_again_on_new_data(trained_store, seed_subset, tmp_path):
    settings, first = trained_store
    grown = pd.concat([pd.read_csv(seed_subset, dtype=str, keep_default_na=False),
                       pd.read_csv("data/seed/messages.csv", dtype=str, keep_default_na=False).iloc[1:200:2]])
    path = tmp_path / "grown.csv"
    grown.to_csv(path, index=False)
    outcome = train_and_log([path], TrainConfig.from_dict(SMALL_CONFIG), settings, progress=False)
    assert outcome.result.data_hash != first.result.data_hash
    # Same config, same data, same folds: the re-run champion scores exactly what the challenger scores.
    assert outcome.gate.promote
    for head in HEADS:
        assert outcome.gate.comparison[head]["delta"] == pytest.approx(0.0, abs=1e-12)


def test_same_inputs_give_the_same_model(seed_subset, encoder):
    data = load_labeled(seed_subset)
    cfg = TrainConfig.from_dict(SMALL_CONFIG)
    a, b = (train(data, cfg, encoder, progress=False) for _ in range(2))
    assert a.data_hash == b.data_hash
    assert a.cv.thresholds == b.cv.thresholds
    assert np.array_equal(a.cv.folds, b.cv.folds)
    texts = ["@Munchly my order never came", "RT to win!!", "the battery caught fire in my garage"]
    pd.testing.assert_frame_equal(a.model.predict_frame(texts), b.model.predict_frame(texts))


def test_grouped_folds_keep_conversations_together(seed):
    from triage_ml.pipeline.cv import make_folds

    folds = make_folds(seed, 5, 42)
    per_conversation = pd.Series(folds).groupby(seed["conversation_id"].to_numpy()).nunique()
    assert (per_conversation == 1).all()
    assert np.bincount(folds).min() > len(seed) / 5 * 0.8
