"""Challenger against champion: the same gold set, the same folds, a smoke test; logged to the challenger's
run (a comparison table and plots) and applied to the registry's aliases unless it is a dry run."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from triage_ml.model.pyfunc import ARTIFACT_KEY
from triage_ml.model.triage_model import TriageModel
from triage_ml.pipeline.config import TrainConfig
from triage_ml.pipeline.encoders import finetuned_encoders, make_encoder
from triage_ml.pipeline.evaluate import Evaluation, evaluate_frame
from triage_ml.pipeline.gate import GateDecision, decide, smoke_test
from triage_ml.pipeline.plots import comparison_figures
from triage_ml.pipeline.train import CrossValidation, cross_validate, feature_source
from triage_ml.registry import CHALLENGER, alias_version, load, set_champion
from triage_ml.settings import Settings
from triage_ml.store.audit import cli_actor, record_model_event
from triage_ml.taxonomy import HEADS

log = logging.getLogger(__name__)
CONFIG_ARTIFACT = "train_config.yaml"


def champion_macro_f1(client: MlflowClient, champion: ModelVersion, settings: Settings, config: TrainConfig,
                      data: pd.DataFrame, folds: np.ndarray, data_hash: str) -> dict[str, float]:
    """The champion's macro F1 per head on this data and these folds.

    Logged metrics are reused when the champion was trained on the same data hash with the same folds;
    otherwise the champion's own config is cross-validated again on the current folds (a fine-tuned
    champion starts again from its base encoder in each fold; a frozen one uses its own encoder).
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
    if champion_config.finetune.enabled:
        base = params.get("base_encoder") or champion_config.encoder or settings.encoder
        encoder = make_encoder(base, settings, champion_config.batch_size)
    else:
        model_dir = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{settings.registered_model_name}/{champion.version}"))
        encoder = make_encoder(str(model_dir / "artifacts" / ARTIFACT_KEY / "encoder"), settings,
                               champion_config.batch_size)
    source = feature_source(data, champion_config, encoder, encoders=finetuned_encoders(settings), progress=False)
    return cross_validate(source, data, champion_config, folds=folds, progress=False).macro_f1()


def _log_comparison(challenger: Evaluation | None, champion: Evaluation | None, champion_version: str | None,
                    *, prefix: str) -> None:
    """Both models' metrics on one evaluation set (``prefix``: gold or real_test) and per-head comparison
    plots, named ``<prefix>_...``."""
    if challenger is None:
        return
    for name, ev in ((prefix, challenger), (f"champion_{prefix}", champion)):
        if ev is not None:
            mlflow.log_metrics({f"{name}.{h}.{k}": v for h, m in ev.metrics.items() for k, v in m.items()
                                if np.isfinite(v)})
    for head in challenger.metrics:
        target = challenger.targets[head]
        y = target.y
        theirs = None
        if champion is not None and head in champion.metrics:
            theirs = (champion.probs[head][target.mask], champion.thresholds[head], f"champion v{champion_version}")
        for name, fig in comparison_figures(head, y, (challenger.probs[head][target.mask],
                                                      challenger.thresholds[head], "challenger"), theirs).items():
            mlflow.log_figure(fig, name.replace("plots/gold_", f"plots/{prefix}_"))
            plt.close(fig)


def run_gate(client: MlflowClient, settings: Settings, config: TrainConfig, *, train_data: pd.DataFrame,
             gold: pd.DataFrame, cv: CrossValidation, model: TriageModel, model_uri: str, data_hash: str,
             version: str | None, real_test: pd.DataFrame | None = None) -> GateDecision:
    """Evaluate on the gold set and real-test, decide, log to the active run; move the aliases when
    ``version`` (a registered version)."""
    name, alias = settings.registered_model_name, settings.model_alias
    champion = alias_version(client, name, alias)
    sets = {"gold": gold, "real_test": real_test if real_test is not None else pd.DataFrame()}
    challenger_evals = {k: evaluate_frame(model, d) if len(d) else None for k, d in sets.items()}
    champion_evals: dict[str, Evaluation | None] = dict.fromkeys(sets)
    champion_folds = None
    if champion is not None:
        if any(len(d) for d in sets.values()):
            champion_model = load(client, f"models:/{name}/{champion.version}", backend=settings.encoder_backend,
                                  threads=settings.torch_threads)
            champion_evals = {k: evaluate_frame(champion_model, d) if len(d) else None for k, d in sets.items()}
        champion_folds = champion_macro_f1(client, champion, settings, config, train_data, cv.folds, data_hash)
    smoke = smoke_test(model_uri, config.gate.smoke_max_p50_ms)
    champion_version = str(champion.version) if champion is not None else None

    def metrics(evals: dict[str, Evaluation | None], key: str) -> dict[str, dict[str, float]] | None:
        return evals[key].metrics if evals[key] is not None else None

    decision = decide(config, smoke, metrics(challenger_evals, "gold") or {}, metrics(champion_evals, "gold"),
                      cv.macro_f1(), champion_folds, champion_version,
                      challenger_real=metrics(challenger_evals, "real_test"),
                      champion_real=metrics(champion_evals, "real_test"))
    mlflow.log_dict(decision.to_dict(), "promotion_gate.json")
    mlflow.log_table(pd.DataFrame([{**c.__dict__} for c in decision.checks]), artifact_file="gate_checks.json")
    for key in sets:
        _log_comparison(challenger_evals[key], champion_evals[key], champion_version, prefix=key)
        if (evaluation := challenger_evals[key]) is not None and evaluation.sentiment is not None:
            mlflow.log_metrics({f"{key}.sentiment.{k}": v for k, v in evaluation.sentiment.items()})
    mlflow.set_tag("promotion", decision.summary())
    if version is not None:
        if decision.promote:
            before = set_champion(client, name, alias, version, "promoted by the gate")
            problem = record_model_event(settings.database_url, "model.promoted", cli_actor(), name, version,
                                         alias=alias, previous=before, how="by the gate")
            if problem is not None:
                log.warning("v%s is champion, but the audit trail could not record it: %s", version, problem)
        else:
            client.set_registered_model_alias(name, CHALLENGER, version)
        client.set_model_version_tag(name, version, "gate", decision.summary()[:5000])
        for h in HEADS:
            client.set_model_version_tag(name, version, f"{h}.macro_f1", f"{cv.metrics[h]['macro_f1']:.4f}")
            for key, ev in challenger_evals.items():
                if ev is not None and h in ev.metrics:
                    client.set_model_version_tag(name, version, f"{key}.{h}.macro_f1",
                                                 f"{ev.metrics[h]['macro_f1']:.4f}")
    return decision
