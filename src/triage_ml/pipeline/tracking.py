"""Train, log everything to MLflow, register, and apply the promotion gate."""

from __future__ import annotations

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
import yaml
from mlflow import MlflowClient

from triage_ml.data.schema import load_labeled
from triage_ml.errors import DataValidationError
from triage_ml.features.cache import EmbeddingCache
from triage_ml.features.encoder import Encoder, resolve_encoder_path
from triage_ml.model.pyfunc import ARTIFACT_KEY, log_triage_model
from triage_ml.pipeline.config import TrainConfig
from triage_ml.pipeline.plots import head_figures
from triage_ml.pipeline.registry import GateDecision, alias_version, decide
from triage_ml.pipeline.train import TrainingResult, cross_validate, embed, train
from triage_ml.settings import Settings
from triage_ml.taxonomy import HEADS, TAXONOMY_VERSION

log = logging.getLogger(__name__)
CONFIG_ARTIFACT = "train_config.yaml"


@dataclass
class TrainOutcome:
    result: TrainingResult
    run_id: str
    model_uri: str
    version: str | None
    gate: GateDecision | None


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


def load_training_data(paths: Sequence[str | Path], *, later_wins: bool = False) -> pd.DataFrame:
    """Validate each file and stack them. A message id may appear in only one file, unless ``later_wins``:
    then a later file's row replaces an earlier one's (the label store's export over the seed data)."""
    frames = [load_labeled(p).assign(source_file=str(p)) for p in paths]
    data = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if later_wins:
        data = data.drop_duplicates("message_id", keep="last").reset_index(drop=True)
    dup = data["message_id"].duplicated(keep="first")
    if dup.any():
        first = data.loc[dup.idxmax()]
        raise DataValidationError(f"message_id '{first['message_id']}' appears in more than one file; "
                                  "ids must be unique across the training files", source=first["source_file"],
                                  column="message_id")
    return data


def make_encoder(name: str, settings: Settings, batch_size: int) -> Encoder:
    cache = EmbeddingCache(settings.cache_dir / "embeddings.sqlite3")
    return Encoder(resolve_encoder_path(name), cache=cache, batch_size=batch_size, threads=settings.torch_threads)


def train_and_log(data_paths: Sequence[str | Path], config: TrainConfig, settings: Settings, *,
                  register: bool = True, progress: bool = True, run_name: str | None = None,
                  later_wins: bool = False, extra_params: dict[str, str] | None = None) -> TrainOutcome:
    """The whole `triage-ml train`: data -> CV -> final model -> MLflow run -> registry -> gate."""
    data = load_training_data(data_paths, later_wins=later_wins)
    client = configure_mlflow(settings)
    encoder = make_encoder(config.encoder or settings.encoder, settings, config.batch_size)
    features = embed(data, encoder, progress=progress)
    result = train(data, config, encoder, progress=progress, features=features)
    cv = result.cv

    with mlflow.start_run(run_name=run_name or f"train-{result.data_hash[:8]}") as run:
        mlflow.log_params({**config.flat_params(), "data_hash": result.data_hash, "n_rows": result.n_rows,
                           "data_files": ",".join(map(str, data_paths)), "encoder_fingerprint":
                           encoder.fingerprint, "taxonomy_version": TAXONOMY_VERSION, **(extra_params or {})})
        mlflow.set_tags({"data_hash": result.data_hash, "taxonomy_version": TAXONOMY_VERSION})
        mlflow.log_text(config.to_yaml(), CONFIG_ARTIFACT)
        _log_cv(data, cv)
        with warnings.catch_warnings():  # MLflow registers the local-file source twice and says so
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(
                data[["message_id", "text", "actionable", "priority_tier", "crisis", "reason"]].astype("string"),
                source=str(Path(data_paths[0]).resolve()), name="training-data")
        mlflow.log_input(dataset, context="training")
        info = log_triage_model(result.model, export_onnx=config.export_onnx,
                                registered_model_name=settings.registered_model_name if register else None)
        version = str(info.registered_model_version) if register else None
        gate = None
        if register:
            gate = _gate(client, settings, config, data, cv, version, result.data_hash)
            mlflow.log_dict({"promote": gate.promote, "reasons": gate.reasons, "champion_version":
                             gate.champion_version, "comparison": gate.comparison}, "promotion_gate.json")
            mlflow.set_tag("promotion", gate.summary())
    uri = f"models:/{settings.registered_model_name}/{version}" if version else info.model_uri
    return TrainOutcome(result, run.info.run_id, uri, version, gate)


def _log_cv(data: pd.DataFrame, cv) -> None:  # noqa: ANN001 (CrossValidation)
    for head, values in cv.metrics.items():
        mlflow.log_metrics({f"{head}.{k}": v for k, v in values.items() if np.isfinite(v)})
        mask = cv.targets[head].mask
        for name, fig in head_figures(head, cv.targets[head].y, cv.oof[head][mask], cv.thresholds[head]).items():
            mlflow.log_figure(fig, name)
            plt.close(fig)
    mlflow.log_dict({"thresholds": cv.thresholds, "metrics": cv.metrics}, "cv_metrics.json")
    table = cv.table(data)
    mlflow.log_table(table.astype({c: "float64" for c in table.columns if c.endswith(("_label", "_pred"))}),
                     artifact_file="oof_predictions.json")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "oof_predictions.parquet"
        table.to_parquet(path, index=False)
        mlflow.log_artifact(str(path))


def _gate(client: MlflowClient, settings: Settings, config: TrainConfig, data: pd.DataFrame, cv,  # noqa: ANN001
          version: str, data_hash: str) -> GateDecision:
    """Compare with the champion on the same folds; move the alias accordingly."""
    name, alias = settings.registered_model_name, settings.model_alias
    champion = alias_version(client, name, alias)
    champion_f1 = None
    if champion is not None:
        champion_f1 = champion_macro_f1(client, champion, settings, config, data, cv.folds, data_hash)
    decision = decide(cv.macro_f1(), champion_f1, config.promotion_tolerance,
                      champion.version if champion else None)
    client.set_registered_model_alias(name, alias if decision.promote else "challenger", version)
    client.set_model_version_tag(name, version, "promotion", decision.summary())
    for h in HEADS:
        client.set_model_version_tag(name, version, f"{h}.macro_f1", f"{cv.metrics[h]['macro_f1']:.4f}")
    return decision


def champion_macro_f1(client: MlflowClient, champion, settings: Settings, config: TrainConfig,  # noqa: ANN001
                      data: pd.DataFrame, folds: np.ndarray, data_hash: str) -> dict[str, float]:
    """The champion's macro F1 per head on this data and these folds.

    Logged metrics are reused when the champion was trained on the same data hash with the same folds;
    otherwise the champion's own config and encoder are cross-validated again on the current folds.
    """
    run = client.get_run(champion.run_id)
    params = run.data.params
    if (params.get("data_hash") == data_hash and params.get("cv_folds") == str(config.cv_folds)
            and params.get("seed") == str(config.seed)):
        return {h: float(run.data.metrics[f"{h}.macro_f1"]) for h in HEADS}
    log.info("champion v%s was trained on other data or folds: cross-validating it again", champion.version)
    champion_config = TrainConfig.from_dict(
        yaml.safe_load(mlflow.artifacts.load_text(f"runs:/{champion.run_id}/{CONFIG_ARTIFACT}")),
        source=f"champion v{champion.version} {CONFIG_ARTIFACT}")
    model_dir = Path(mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{settings.registered_model_name}/{champion.version}"))
    encoder = make_encoder(str(model_dir / "artifacts" / ARTIFACT_KEY / "encoder"), settings,
                           champion_config.batch_size)
    champion_cv = cross_validate(embed(data, encoder, progress=False), data, champion_config, folds=folds,
                                 progress=False)
    return champion_cv.macro_f1()
