"""Train, log everything to MLflow, register, and apply the promotion gate."""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from triage_ml.data.real import is_real, is_real_test, load_real
from triage_ml.data.schema import dataset_hash, load_labeled
from triage_ml.errors import DataValidationError
from triage_ml.features.finetune import FINETUNE_META
from triage_ml.model.pyfunc import log_triage_model
from triage_ml.pipeline.config import TrainConfig
from triage_ml.pipeline.encoders import finetuned_encoders, make_encoder, onnx_exports
from triage_ml.pipeline.gate import GateDecision
from triage_ml.pipeline.holdout import gold_mask
from triage_ml.pipeline.plots import head_figures
from triage_ml.pipeline.promotion import CONFIG_ARTIFACT, run_gate
from triage_ml.pipeline.train import TrainingResult, train
from triage_ml.settings import Settings
from triage_ml.taxonomy import HEADS, TAXONOMY_VERSION

log = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    result: TrainingResult
    run_id: str
    model_uri: str
    version: str | None
    gate: GateDecision | None
    gold_rows: int = 0
    real_test_rows: int = 0


def connect_mlflow(settings: Settings) -> None:
    """Point MLflow's tracking and registry at the configured store."""
    uri = settings.resolved_tracking_uri()
    if not settings.tracking_uri:
        settings.mlruns_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(settings.registry_uri or uri)


def configure_mlflow(settings: Settings) -> MlflowClient:
    """Connect, and create the experiment (artifacts under mlruns/) if it is new."""
    connect_mlflow(settings)
    client = MlflowClient()
    if client.get_experiment_by_name(settings.experiment_name) is None:
        location = None if settings.tracking_uri else settings.artifact_root()
        client.create_experiment(settings.experiment_name, artifact_location=location)
    mlflow.set_experiment(settings.experiment_name)
    return client


def load_training_data(paths: Sequence[str | Path], *, later_wins: bool = False,
                       config: TrainConfig | None = None) -> pd.DataFrame:
    """Validate each file and stack them, with real-train (``config.real_data``) after them. A message id may
    appear in only one file, unless ``later_wins``: then a later file's row replaces an earlier one's (the
    label store's export over the seed data). Real-test rows are dropped, whichever file holds them: no
    model trains on them."""
    frames = [load_labeled(p).assign(source_file=str(p)) for p in paths]
    if config is not None and config.real_data is not None:
        real = config.real_data
        frames.append(load_real(real.texts, real.labels, split="train").drop(columns=["real_split"])
                      .assign(source_file=real.labels))
    data = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if later_wins:
        data = data.drop_duplicates("message_id", keep="last").reset_index(drop=True)
    dup = data["message_id"].duplicated(keep="first")
    if dup.any():
        first = data.loc[dup.idxmax()]
        raise DataValidationError(f"message_id '{first['message_id']}' appears in more than one file; "
                                  "ids must be unique across the training files", source=first["source_file"],
                                  column="message_id")
    test = is_real_test(data["message_id"])
    if test.any():
        log.warning("left out %d real-test messages found in the training files: no model trains on them",
                    int(test.sum()))
        data = data[~test].reset_index(drop=True)
    return data


def split_gold(data: pd.DataFrame, config: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows that train, the gold set). Real rows are never gold: real-test is their held-out set."""
    held_out = gold_mask(data, config.holdout) & ~is_real(data["message_id"])
    return data[~held_out].reset_index(drop=True), data[held_out].reset_index(drop=True)


def real_test_data(config: TrainConfig) -> pd.DataFrame:
    """Real-test (``data.real``) when the config uses the real data, else an empty frame."""
    if config.real_data is None:
        return pd.DataFrame()
    return load_real(config.real_data.texts, config.real_data.labels, split="test")


def train_and_log(data_paths: Sequence[str | Path], config: TrainConfig, settings: Settings, *,
                  register: bool = True, dry_run: bool = False, progress: bool = True, run_name: str | None = None,
                  later_wins: bool = False, extra_params: dict[str, str] | None = None) -> TrainOutcome:
    """The whole `triage-ml train`: data -> gold set held out -> CV -> final model -> MLflow run ->
    registry -> promotion gate. ``dry_run``: everything is logged and the gate decides, but nothing is
    registered and no alias moves."""
    data = load_training_data(data_paths, later_wins=later_wins, config=config)
    train_data, gold = split_gold(data, config)
    real_test = real_test_data(config)
    client = configure_mlflow(settings)
    base_name = config.encoder or settings.encoder
    encoder = make_encoder(base_name, settings, config.batch_size)
    result = train(train_data, config, encoder, progress=progress, encoders=finetuned_encoders(settings))
    cv = result.cv

    with mlflow.start_run(run_name=run_name or f"train-{result.data_hash[:8]}") as run:
        mlflow.log_params({**config.flat_params(), "data_hash": result.data_hash, "n_rows": result.n_rows,
                           "gold_rows": len(gold), "gold_hash": dataset_hash(gold) if len(gold) else "",
                           "data_files": ",".join(map(str, data_paths)), "base_encoder": base_name,
                           "real_train_rows": int(is_real(train_data["message_id"]).sum()),
                           "real_test_rows": len(real_test),
                           "real_test_hash": dataset_hash(real_test) if len(real_test) else "",
                           "base_encoder_fingerprint": encoder.fingerprint,
                           "encoder_fingerprint": result.model.encoder.fingerprint,
                           "taxonomy_version": TAXONOMY_VERSION, **(extra_params or {})})
        mlflow.set_tags({"data_hash": result.data_hash, "taxonomy_version": TAXONOMY_VERSION})
        mlflow.log_text(config.to_yaml(), CONFIG_ARTIFACT)
        _log_cv(train_data, cv)
        _log_finetune(result)
        if result.threads is not None:
            mlflow.log_param("threads_hash", result.threads.data_hash)
            mlflow.log_metrics(result.threads.metrics())
            mlflow.log_dict({"single": result.threads.single, "thread": result.threads.thread,
                             **result.threads.summary()}, "thread_metrics.json")
        _log_inputs(train_data, gold, data_paths)
        registered = settings.registered_model_name if register and not dry_run else None
        info = log_triage_model(result.model, export_onnx=config.export_onnx, registered_model_name=registered,
                                onnx_exports=onnx_exports(settings))
        version = str(info.registered_model_version) if registered else None
        gate = None
        if register or dry_run:
            uri = f"models:/{registered}/{version}" if version else info.model_uri
            gate = run_gate(client, settings, config, train_data=train_data, gold=gold, cv=cv, model=result.model,
                            model_uri=uri, data_hash=result.data_hash, version=version, real_test=real_test)
    uri = f"models:/{settings.registered_model_name}/{version}" if version else info.model_uri
    return TrainOutcome(result, run.info.run_id, uri, version, gate, len(gold), len(real_test))


def _log_inputs(train_data: pd.DataFrame, gold: pd.DataFrame, data_paths: Sequence[str | Path]) -> None:
    """The training data as an MLflow dataset input, and the gold set's ids and labels as an artifact."""
    columns = ["message_id", "text", *HEADS, "reason"]
    with warnings.catch_warnings():  # MLflow registers the local-file source twice and says so
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(train_data[columns].astype("string"),
                                          source=str(Path(data_paths[0]).resolve()), name="training-data")
    mlflow.log_input(dataset, context="training")
    if len(gold):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "gold_set.parquet"
            gold[columns].astype("string").to_parquet(path, index=False)
            mlflow.log_artifact(str(path))


def _log_cv(data: pd.DataFrame, cv) -> None:  # noqa: ANN001 (CrossValidation)
    for head, values in cv.real_metrics.items():
        mlflow.log_metrics({f"real_oof.{head}.{k}": v for k, v in values.items() if np.isfinite(v)})
    mlflow.set_tag("thresholds_chosen_on", cv.selected_on)
    for head, values in cv.metrics.items():
        mlflow.log_metrics({f"{head}.{k}": v for k, v in values.items() if np.isfinite(v)})
        mask = cv.targets[head].mask
        for name, fig in head_figures(head, cv.targets[head].y, cv.oof[head][mask], cv.thresholds[head]).items():
            mlflow.log_figure(fig, name)
            plt.close(fig)
    mlflow.log_dict({"thresholds": cv.thresholds, "thresholds_chosen_on": cv.selected_on, "metrics": cv.metrics,
                     "real_metrics": cv.real_metrics}, "cv_metrics.json")
    table = cv.table(data)
    mlflow.log_table(table.astype({c: "float64" for c in table.columns if c.endswith(("_label", "_pred"))}),
                     artifact_file="oof_predictions.json")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "oof_predictions.parquet"
        table.to_parquet(path, index=False)
        mlflow.log_artifact(str(path))


def _log_finetune(result: TrainingResult) -> None:
    """Fine-tuning cost and the final encoder's loss per epoch (metric ``finetune.loss``, step = epoch)."""
    if not result.extras:
        return
    mlflow.log_metrics(result.extras)
    meta = result.model.encoder.path / FINETUNE_META
    if meta.is_file():
        for epoch, loss in enumerate(json.loads(meta.read_text())["epoch_losses"], start=1):
            mlflow.log_metric("finetune.loss", loss, step=epoch)
