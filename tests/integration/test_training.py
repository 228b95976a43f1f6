"""Training against a real MLflow store and registry: logging, registration, the promotion gate."""

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import FROZEN_CONFIG, SMALL_CONFIG
from triage_ml.features.finetune import FineTunedEncoders
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
            "promotion_gate.json", "gate_checks.json", "gold_set.parquet", "plots"} <= artifacts
    plots = {a.path.removeprefix("plots/") for a in client.list_artifacts(outcome.run_id, "plots")}
    for head in HEADS:  # out-of-fold plots, and the gold-set plots the gate compares on
        assert {f"{head}_confusion.png", f"{head}_pr_curve.png", f"{head}_reliability.png",
                f"gold_{head}_confusion.png", f"gold_{head}_pr_curve.png"} <= plots
    # the gold set is held out: never trained on, scored by the model at its own thresholds
    gold = pd.read_parquet(client.download_artifacts(outcome.run_id, "gold_set.parquet"))
    assert outcome.gold_rows == len(gold) > 0
    trained = pd.read_parquet(client.download_artifacts(outcome.run_id, "oof_predictions.parquet"))
    assert not set(gold["message_id"]) & set(trained["message_id"])
    assert run.data.params["gold_rows"] == str(len(gold))
    assert {"gold.actionable.macro_f1", "gold.crisis.recall_at_threshold"} <= set(run.data.metrics)
    assert outcome.gate.checks[0].name == "smoke" and outcome.gate.checks[0].passed


def test_gate_refuses_a_worse_model_and_keeps_the_champion(own_store, seed_subset):
    settings, _ = own_store
    weak = TrainConfig.from_dict({**SMALL_CONFIG, "heads": {"default": {"text_weight": 1.0, "text_C": 0.001}}})
    outcome = train_and_log([seed_subset], weak, settings, progress=False)
    client = MlflowClient()
    assert not outcome.gate.promote
    failed = [c for c in outcome.gate.checks if not c.passed]
    assert failed and all(c.name.endswith(".macro_f1") or c.name == "gold.crisis.recall" for c in failed)
    assert outcome.gate.reasons == [c.detail for c in failed]  # the command says which checks failed
    assert any(r.startswith(("gold ", "folds ")) and "vs champion v1" in r for r in outcome.gate.reasons)
    assert str(client.get_model_version_by_alias("triage-ml", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("triage-ml", "challenger").version) == outcome.version


def test_champion_is_cross_validated_again_on_new_data(own_frozen_store, seed_subset, tmp_path):
    """On the frozen encoder (the champion's config re-run on the new data is what is tested; that fine-tuning
    the same inputs with the same seed gives the same weights is tests/unit/test_finetune.py's to show)."""
    settings, first = own_frozen_store
    # new data: a quarter of the champion's rows and 60 it never saw (254 messages, every class of every head,
    # 31 crises), so the champion's config is cross-validated again, on fewer rows than it was trained on
    new = pd.concat([pd.read_csv(seed_subset, dtype=str, keep_default_na=False).iloc[::4],
                     pd.read_csv("data/seed/messages.csv", dtype=str, keep_default_na=False).iloc[1:120:2]])
    path = tmp_path / "new.csv"
    new.to_csv(path, index=False)
    outcome = train_and_log([path], TrainConfig.from_dict(FROZEN_CONFIG), settings, progress=False)
    assert outcome.result.data_hash != first.result.data_hash
    # Same config, same data, same folds: the re-run champion scores exactly what the challenger scores.
    folds = {c.name: c for c in outcome.gate.checks if c.name.startswith("folds.")}
    assert set(folds) == {f"folds.{h}.macro_f1" for h in HEADS}
    for check in folds.values():
        assert check.passed and check.challenger == pytest.approx(check.champion, abs=1e-12)
    gold = {c.name for c in outcome.gate.checks if c.name.startswith("gold.") and c.name.endswith("macro_f1")}
    assert gold == {f"gold.{h}.macro_f1" for h in HEADS}  # and both models were judged on the same gold set


def test_same_inputs_give_the_same_model(seed, encoder, tmp_path):
    """Two trainings on the same inputs: the same folds, thresholds, recalibration and answers. On the frozen
    encoder (seconds, not minutes): that fine-tuning the same inputs with the same seed gives the same weights
    is tests/unit/test_finetune.py's to show."""
    data = seed.iloc[::4].reset_index(drop=True)
    cfg = TrainConfig.from_dict(FROZEN_CONFIG)
    a, b = (train(data, cfg, encoder, progress=False, encoders=FineTunedEncoders(tmp_path / run))
            for run in ("a", "b"))
    assert a.model.encoder.fingerprint == b.model.encoder.fingerprint == encoder.fingerprint
    assert a.data_hash == b.data_hash
    assert a.cv.thresholds == b.cv.thresholds
    assert a.cv.recalibration == b.cv.recalibration
    assert np.array_equal(a.cv.folds, b.cv.folds)
    texts = ["@Munchly my order never came", "RT to win!!", "the battery caught fire in my garage"]
    pd.testing.assert_frame_equal(a.model.predict_frame(texts), b.model.predict_frame(texts))


def test_fine_tuning_is_logged_and_its_encoder_is_the_models(trained_store):
    settings, outcome = trained_store
    client = configure_mlflow(settings)
    run = client.get_run(outcome.run_id)
    assert run.data.params["finetune.enabled"] == "True"
    assert run.data.params["base_encoder"] == "all-MiniLM-L6-v2"
    assert run.data.params["encoder_fingerprint"] != run.data.params["base_encoder_fingerprint"]
    assert run.data.metrics["finetune.seconds_per_fold"] > 0
    assert [m.step for m in client.get_metric_history(outcome.run_id, "finetune.loss")] == [1]
    assert (outcome.result.model.encoder.path / "finetune.json").is_file()
    # the fold models' out-of-fold probabilities were recalibrated, and the model carries the sigmoids
    assert set(outcome.result.model.recalibration) == set(HEADS)


def test_grouped_folds_keep_conversations_together(seed):
    from triage_ml.pipeline.cv import make_folds

    folds = make_folds(seed, 5, 42)
    per_conversation = pd.Series(folds).groupby(seed["conversation_id"].to_numpy()).nunique()
    assert (per_conversation == 1).all()
    assert np.bincount(folds).min() > len(seed) / 5 * 0.8


def test_real_data_trains_chooses_thresholds_and_is_gated_on_real_test(settings, seed_half, tmp_path):
    """The default path's real data, made small: real-train joins training, real-test never does, the
    thresholds follow the real rows, and the gate judges both models on real-test."""
    from tests.conftest import ROOT, XCI
    from triage_ml.data.real import REAL_LABELS, is_real, is_real_test, read_label_file

    labels = read_label_file(ROOT / REAL_LABELS)
    crises = labels[labels["crisis"] == "true"]
    some = pd.concat([labels.iloc[::10], crises]).drop_duplicates("tweet_id")  # ~400 tweets, every crisis
    path = tmp_path / "labels.csv"
    some.to_csv(path, index=False)
    config = TrainConfig.from_dict({**FROZEN_CONFIG, "real_data": {"texts": str(XCI), "labels": str(path)}})
    first = train_and_log([seed_half], config, settings, progress=False)
    client = configure_mlflow(settings)
    run = client.get_run(first.run_id)
    trained = pd.read_parquet(client.download_artifacts(first.run_id, "oof_predictions.parquet"))
    real = is_real(trained["message_id"])
    assert real.sum() == int(run.data.params["real_train_rows"]) > 200
    assert not is_real_test(trained["message_id"]).any(), "real-test is never trained on"
    assert first.real_test_rows == int(run.data.params["real_test_rows"]) > 100
    assert run.data.tags["thresholds_chosen_on"] == "real"
    assert {f"real_oof.{h}.macro_f1" for h in HEADS} | {f"real_test.{h}.macro_f1" for h in HEADS} <= set(
        run.data.metrics)
    assert first.result.model.kind_head is not None
    # the real tweets carry their source's sentiment: the model has a sentiment head, judged on real-test
    assert first.result.model.sentiment_head is not None
    assert 0 < run.data.metrics["real_test.sentiment.macro_f1"] <= 1
    assert first.result.model.predict_frame(["thank you so much, the refund came already!"])["sentiment"][0] in (
        "positive", "neutral", "negative")
    plots = {a.path.removeprefix("plots/") for a in client.list_artifacts(first.run_id, "plots")}
    assert {f"real_test_{h}_confusion.png" for h in HEADS} <= plots
    # a second model is judged against the champion on real-test as well
    second = train_and_log([seed_half], config.model_copy(update={"seed": 7}), settings, progress=False)
    real_checks = {c.name: c for c in second.gate.checks if c.name.startswith("real_test.")}
    assert set(real_checks) == {f"real_test.{h}.macro_f1" for h in HEADS}
    for check in real_checks.values():
        assert check.champion == pytest.approx(run.data.metrics[f"real_test.{check.name.split('.')[1]}.macro_f1"])
