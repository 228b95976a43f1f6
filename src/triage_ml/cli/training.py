"""Commands that train, judge and move models: train, retrain, promote, rollback, evaluate, model info."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from triage_ml.cli.common import DEFAULT_CONFIG, DEFAULT_SEED, app, export_store, model_app, settings_from_env
from triage_ml.errors import TriageError
from triage_ml.store.audit import cli_actor, record_model_event


@app.command("train")
def train_cmd(
    data: Annotated[list[Path] | None, typer.Option("--data", "-d", help="labeled file(s); repeatable")] = None,
    config: Annotated[Path, typer.Option(help="training config YAML")] = DEFAULT_CONFIG,
    register: Annotated[bool, typer.Option(help="register the model and apply the promotion gate")] = True,
    if_missing: Annotated[bool, typer.Option("--if-missing", help="do nothing if a champion exists")] = False,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    from_store: Annotated[bool, typer.Option("--from-store", help=(
        "add the label store's export (TRIAGE_DATABASE_URL); its labels win over the files' for the same "
        "message_id"))] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help=(
        "train, log and run the gate, but register nothing and move no alias"))] = False,
) -> None:
    """Cross-validate, fit, log to MLflow and register a model; promote it only if it passes the gate."""
    from triage_ml.pipeline.tracking import configure_mlflow
    from triage_ml.registry import alias_version

    settings = settings_from_env()
    if if_missing:
        existing = alias_version(configure_mlflow(settings), settings.registered_model_name, settings.model_alias)
        if existing is not None:
            typer.echo(f"{settings.registered_model_name}@{settings.model_alias} is version {existing.version}; "
                       "nothing to train (drop --if-missing to train anyway)")
            return
    _train(list(data or [DEFAULT_SEED]), config, register=register, progress=progress, from_store=from_store,
           dry_run=dry_run)


@app.command("retrain")
def retrain_cmd(
    data: Annotated[list[Path] | None, typer.Option("--data", "-d", help="labeled file(s) besides the store; "
                                                    "default the seed data")] = None,
    config: Annotated[Path, typer.Option(help="training config YAML (the same as the champion's, usually)")] = (
        DEFAULT_CONFIG),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the gate's decision without registering or "
                                          "moving the alias")] = False,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Export the label store, train a challenger on it with the seed data, judge it against the champion
    on the gold set (lead labels + held-out seed) and on the same folds, and promote it only if it passes."""
    _train(list(data or [DEFAULT_SEED]), config, register=True, progress=progress, from_store=True,
           dry_run=dry_run)


def _train(paths: list[Path], config: Path, *, register: bool, progress: bool, from_store: bool,
           dry_run: bool) -> None:
    from triage_ml.pipeline.config import TrainConfig
    from triage_ml.pipeline.tracking import train_and_log

    settings = settings_from_env()
    cfg = TrainConfig.from_yaml(config)
    extra: dict[str, str] = {}
    if from_store:
        export, digest, rows = export_store(settings, Path("data/exports"))
        if rows:
            paths.append(export)
        typer.echo(f"label store: {rows} labeled messages (export {digest[:12]})")
        extra = {"store_export_hash": digest, "store_export_rows": str(rows), "store_export": str(export.resolve())}
    outcome = train_and_log(paths, cfg, settings, register=register, dry_run=dry_run, progress=progress,
                            later_wins=from_store, extra_params=extra)
    cv = outcome.result.cv
    held = f"{outcome.gold_rows} more held out as the gold set"
    if outcome.real_test_rows:
        held += f", {outcome.real_test_rows} real tweets as real-test"
    typer.echo(f"trained on {outcome.result.n_rows} messages (data {outcome.result.data_hash[:12]}; {held}), "
               f"{cfg.cv_folds}-fold out-of-fold metrics:")
    _echo_metrics(cv.metrics)
    if cv.real_metrics:
        typer.echo(f"  on the real tweets alone (thresholds chosen on {cv.selected_on} rows):")
        _echo_metrics(cv.real_metrics)
    if outcome.real_test_rows:
        from mlflow import MlflowClient

        logged = MlflowClient().get_run(outcome.run_id).data.metrics
        typer.echo("real-test (never trained on): " + ", ".join(
            f"{h} macro F1 {logged[f'real_test.{h}.macro_f1']:.3f}" for h in cv.metrics
            if f"real_test.{h}.macro_f1" in logged))
    typer.echo(f"run {outcome.run_id}; model {outcome.model_uri}")
    if outcome.gate is not None:
        for check in outcome.gate.checks:
            typer.echo(f"  [{'pass' if check.passed else 'FAIL'}] {check.detail}")
        what = "dry run, nothing registered" if dry_run else f"version {outcome.version}"
        typer.echo(f"{what}: {outcome.gate.summary()}")
    typer.echo(f"MLflow UI: .venv/bin/mlflow ui --backend-store-uri {settings.resolved_tracking_uri()}")


def _echo_metrics(metrics: dict[str, dict[str, float]]) -> None:
    for head, m in metrics.items():
        crisis = (f"  recall {m['recall_at_threshold']:.3f}  precision {m['precision_at_threshold']:.3f}"
                  if head == "crisis" else "")
        typer.echo(f"  {head:<14} macro F1 {m['macro_f1']:.3f}  PR-AUC {m['pr_auc']:.3f}  "
                   f"Brier {m['brier']:.3f}  threshold {m['threshold']:.2f}{crisis}")


@app.command("promote")
def promote_cmd(version: Annotated[str, typer.Argument(help="the registered version to serve")]) -> None:
    """Make VERSION the champion by hand (the gate is not asked); the former champion can be restored with
    `triage-ml rollback`. Services pick the change up at their next alias poll."""
    from triage_ml.pipeline.tracking import configure_mlflow
    from triage_ml.registry import set_champion

    settings = settings_from_env()
    client = configure_mlflow(settings)
    name = settings.registered_model_name
    before = set_champion(client, name, settings.model_alias, version, "promoted by hand")
    was = f" (was v{before}; `triage-ml rollback` restores it)" if before and before != version else ""
    typer.echo(f"{name}@{settings.model_alias} is version {version}{was}")
    if before != version:
        _audited(record_model_event(settings.database_url, "model.promoted", cli_actor(), name, version,
                                    alias=settings.model_alias, previous=before, how="by hand"))


@app.command("rollback")
def rollback_cmd() -> None:
    """Serve the previous champion again (the alias `previous`); a second rollback undoes the first."""
    from triage_ml.pipeline.tracking import configure_mlflow
    from triage_ml.registry import PREVIOUS, rollback

    settings = settings_from_env()
    client = configure_mlflow(settings)
    now, rolled_back = rollback(client, settings.registered_model_name, settings.model_alias)
    typer.echo(f"{settings.registered_model_name}@{settings.model_alias} is version {now} again "
               f"(v{rolled_back} is now '{PREVIOUS}')")
    _audited(record_model_event(settings.database_url, "model.rolled_back", cli_actor(),
                                settings.registered_model_name, now, alias=settings.model_alias,
                                previous=rolled_back))


def _audited(problem: str | None) -> None:
    """A registry change the audit trail could not take: say so (the change stands)."""
    if problem is not None:
        typer.echo(f"warning: the change is made, but the audit trail could not record it: {problem}", err=True)


@app.command("evaluate")
def evaluate_cmd(
    data: Annotated[Path, typer.Argument(help="labeled file to score (CSV, JSONL or Parquet)")],
    model: Annotated[str | None, typer.Option(help="model URI; default models:/<name>@<alias>")] = None,
    out: Annotated[Path | None, typer.Option(help="also write the metrics JSON here")] = None,
) -> None:
    """Metrics of a registered model on a labeled file, at the model's stored thresholds (JSON)."""
    from triage_ml.data.schema import load_labeled
    from triage_ml.pipeline.evaluate import evaluate_model
    from triage_ml.registry import client_for

    settings = settings_from_env()
    uri = model or settings.model_uri()
    metrics = evaluate_model(client_for(settings), uri, load_labeled(data))
    text = json.dumps({"model": uri, "data": str(data), "metrics": metrics}, indent=2)
    if out:
        out.write_text(text)
    typer.echo(text)


@model_app.command("info")
def model_info_cmd() -> None:
    """Registered versions, aliases and headline metrics."""
    from triage_ml.pipeline.tracking import configure_mlflow

    settings = settings_from_env()
    client = configure_mlflow(settings)
    name = settings.registered_model_name
    versions = client.search_model_versions(f"name='{name}'")
    if not versions:
        raise TriageError(f"no registered model '{name}' in {settings.resolved_tracking_uri()}; run triage-ml train")
    aliases_of: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(name).aliases.items():
        aliases_of.setdefault(str(version), []).append(alias)
    for mv in sorted(versions, key=lambda v: int(v.version)):
        aliases = ",".join(sorted(aliases_of.get(str(mv.version), []))) or "-"
        f1 = " ".join(f"{k}={v}" for k, v in sorted(mv.tags.items()) if k.endswith("macro_f1"))
        typer.echo(f"{name} v{mv.version} [{aliases}] run {mv.run_id} {f1}")
