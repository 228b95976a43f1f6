"""The ``triage-ml`` command line. Errors the user can fix print one line and exit with status 2."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from triage_ml.errors import TriageError

if TYPE_CHECKING:
    import pandas as pd

    from triage_ml.model.triage_model import TriageModel
    from triage_ml.review.client import LabelStudio
    from triage_ml.settings import Settings
    from triage_ml.store.db import Store

app = typer.Typer(help="Triage for social customer care: train, evaluate and serve three classifiers.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
data_app = typer.Typer(help="Validate and import labeled data.", no_args_is_help=True)
benchmark_app = typer.Typer(help="Quality benchmarks on public data.", no_args_is_help=True)
model_app = typer.Typer(help="Inspect the model registry.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(benchmark_app, name="benchmark")
labels_app = typer.Typer(help="The label store: agent decisions and lead answers as training labels.",
                         no_args_is_help=True)
db_app = typer.Typer(help="The label store's database schema.", no_args_is_help=True)
review_app = typer.Typer(help="Lead reviews in Label Studio: disputes out, gold labels back, active learning.",
                         no_args_is_help=True)
app.add_typer(review_app, name="review")
report_app = typer.Typer(help="Monitoring reports: drift of recent messages against the training set.",
                         no_args_is_help=True)
app.add_typer(report_app, name="report")
app.add_typer(model_app, name="model")
app.add_typer(labels_app, name="labels")
app.add_typer(db_app, name="db")

DEFAULT_CONFIG = Path("training/configs/default.yaml")
DEFAULT_SEED = Path("data/seed/messages.csv")


def _settings():
    from triage_ml.settings import get_settings

    return get_settings()


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
    from triage_ml.pipeline.registry import alias_version
    from triage_ml.pipeline.tracking import configure_mlflow

    settings = _settings()
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

    settings = _settings()
    cfg = TrainConfig.from_yaml(config)
    extra: dict[str, str] = {}
    if from_store:
        export, digest, rows = _export_store(settings, Path("data/exports"))
        if rows:
            paths.append(export)
        typer.echo(f"label store: {rows} labeled messages (export {digest[:12]})")
        extra = {"store_export_hash": digest, "store_export_rows": str(rows), "store_export": str(export.resolve())}
    outcome = train_and_log(paths, cfg, settings, register=register, dry_run=dry_run, progress=progress,
                            later_wins=from_store, extra_params=extra)
    cv = outcome.result.cv
    typer.echo(f"trained on {outcome.result.n_rows} messages (data {outcome.result.data_hash[:12]}; "
               f"{outcome.gold_rows} more held out as the gold set), {cfg.cv_folds}-fold out-of-fold metrics:")
    for head, m in cv.metrics.items():
        crisis = (f"  recall {m['recall_at_threshold']:.3f}  precision {m['precision_at_threshold']:.3f}"
                  if head == "crisis" else "")
        typer.echo(f"  {head:<14} macro F1 {m['macro_f1']:.3f}  PR-AUC {m['pr_auc']:.3f}  "
                   f"Brier {m['brier']:.3f}  threshold {m['threshold']:.2f}{crisis}")
    typer.echo(f"run {outcome.run_id}; model {outcome.model_uri}")
    if outcome.gate is not None:
        for check in outcome.gate.checks:
            typer.echo(f"  [{'pass' if check.passed else 'FAIL'}] {check.detail}")
        what = "dry run, nothing registered" if dry_run else f"version {outcome.version}"
        typer.echo(f"{what}: {outcome.gate.summary()}")
    typer.echo(f"MLflow UI: .venv/bin/mlflow ui --backend-store-uri {settings.resolved_tracking_uri()}")


@app.command("promote")
def promote_cmd(version: Annotated[str, typer.Argument(help="the registered version to serve")]) -> None:
    """Make VERSION the champion by hand (the gate is not asked); the former champion can be restored with
    `triage-ml rollback`. Services pick the change up at their next alias poll."""
    from triage_ml.pipeline.registry import set_champion
    from triage_ml.pipeline.tracking import configure_mlflow

    settings = _settings()
    client = configure_mlflow(settings)
    before = set_champion(client, settings.registered_model_name, settings.model_alias, version, "promoted by hand")
    was = f" (was v{before}; `triage-ml rollback` restores it)" if before and before != version else ""
    typer.echo(f"{settings.registered_model_name}@{settings.model_alias} is version {version}{was}")


@app.command("rollback")
def rollback_cmd() -> None:
    """Serve the previous champion again (the alias `previous`); a second rollback undoes the first."""
    from triage_ml.pipeline.registry import PREVIOUS, rollback
    from triage_ml.pipeline.tracking import configure_mlflow

    settings = _settings()
    client = configure_mlflow(settings)
    now, rolled_back = rollback(client, settings.registered_model_name, settings.model_alias)
    typer.echo(f"{settings.registered_model_name}@{settings.model_alias} is version {now} again "
               f"(v{rolled_back} is now '{PREVIOUS}')")


@app.command("evaluate")
def evaluate_cmd(
    data: Annotated[Path, typer.Argument(help="labeled file to score (CSV, JSONL or Parquet)")],
    model: Annotated[str | None, typer.Option(help="model URI; default models:/<name>@<alias>")] = None,
    out: Annotated[Path | None, typer.Option(help="also write the metrics JSON here")] = None,
) -> None:
    """Metrics of a registered model on a labeled file, at the model's stored thresholds (JSON)."""
    from triage_ml.data.schema import load_labeled
    from triage_ml.pipeline.evaluate import evaluate_model
    from triage_ml.pipeline.tracking import configure_mlflow

    settings = _settings()
    configure_mlflow(settings)
    uri = model or f"models:/{settings.registered_model_name}@{settings.model_alias}"
    metrics = evaluate_model(uri, load_labeled(data))
    text = json.dumps({"model": uri, "data": str(data), "metrics": metrics}, indent=2)
    if out:
        out.write_text(text)
    typer.echo(text)


@data_app.command("validate")
def validate_cmd(path: Annotated[Path, typer.Argument(help="labeled file")]) -> None:
    """Check a labeled file against the contract and print its label counts."""
    from triage_ml.data.schema import load_labeled

    df = load_labeled(path)
    typer.echo(f"{path}: {len(df)} messages OK")
    for col in ("actionable", "priority_tier", "crisis", "reason"):
        counts = df[col].astype("string").fillna("unknown").value_counts().to_dict()
        typer.echo(f"  {col}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@data_app.command("import")
def import_cmd(
    kind: Annotated[str, typer.Argument(help="source kind: xci")],
    path: Annotated[Path, typer.Argument(help="source file")],
    out: Annotated[Path, typer.Option(help="output file (.csv, .jsonl or .parquet)")],
) -> None:
    """Convert a public data set to the labeled-message contract (only what the source says)."""
    from triage_ml.data.importers import IMPORTERS
    from triage_ml.data.io import write_table

    if kind not in IMPORTERS:
        raise TriageError(f"unknown import kind '{kind}'; known: {', '.join(IMPORTERS)}")
    df = IMPORTERS[kind](path)
    write_table(df, out)
    typer.echo(f"wrote {len(df)} messages to {out}")


@benchmark_app.command("xci")
def benchmark_xci_cmd(
    path: Annotated[Path, typer.Argument(help="xci_complaints.csv")] = Path("../shared/data/public/xci_complaints.csv"),
    folds: Annotated[int, typer.Option(help="stratified CV folds")] = 10,
    config: Annotated[Path, typer.Option(help="training config whose head settings are used")] = DEFAULT_CONFIG,
    backend: Annotated[str, typer.Option(help="encoder runtime: torch, onnx or onnx-int8")] = "torch",
    finetune: Annotated[bool, typer.Option("--finetune/--frozen", help=(
        "fine-tune the encoder per fold (multi-task, the config's finetune settings) or keep it frozen"))] = False,
) -> None:
    """10-fold macro F1 for complaint detection and complaint severity; prints one JSON line."""
    from triage_ml.benchmark.xci import run_xci_benchmark
    from triage_ml.features.encoder import BACKENDS
    from triage_ml.pipeline.config import TrainConfig

    if backend not in BACKENDS:
        raise TriageError(f"unknown backend '{backend}'; use one of {', '.join(BACKENDS)}")
    result = run_xci_benchmark(path, TrainConfig.from_yaml(config), _settings(), folds=folds, backend=backend,
                               finetune=finetune)
    typer.echo(json.dumps(result))


def _store_table(settings):  # noqa: ANN001
    """The label store's training table (``labels.export.training_table``) and its hash."""
    from triage_ml.labels.export import table_hash, training_table
    from triage_ml.store.db import Store

    store = Store(settings.database_url)
    try:
        table = training_table(store)
    finally:
        store.dispose()
    return table, table_hash(table)


def _export_store(settings, folder: Path) -> tuple[Path, str, int]:  # noqa: ANN001
    from triage_ml.data.io import write_table

    table, digest = _store_table(settings)
    folder.mkdir(parents=True, exist_ok=True)
    return write_table(table, folder / f"labels-{digest[:12]}.csv"), digest, len(table)


@labels_app.command("export")
def labels_export_cmd(
    out: Annotated[Path, typer.Option(help="output file (.csv, .jsonl or .parquet)")],
) -> None:
    """Write the training table built from the store: one row per labeled message, lead > agents agreeing
    > one agent > seed/import, with each head's source and the label ids used. Deterministic."""
    from triage_ml.data.io import write_table

    table, digest = _store_table(_settings())
    write_table(table, out)
    typer.echo(f"wrote {len(table)} labeled messages to {out} (sha256 {digest[:12]})")


@db_app.command("upgrade")
def db_upgrade_cmd(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Apply the label store's migrations (the service also does this on start)."""
    from triage_ml.store.db import current_revision, make_engine, migrate

    settings = _settings()
    engine = make_engine(settings.database_url)
    try:
        migrate(engine, revision)
        typer.echo(f"{engine.url.render_as_string(hide_password=True)} at revision {current_revision(engine)}")
    finally:
        engine.dispose()


def _review_context() -> tuple[Settings, Store, LabelStudio]:
    from triage_ml.review.client import label_studio_client
    from triage_ml.store.db import Store

    settings = _settings()
    return settings, Store(settings.database_url), label_studio_client(settings)


@review_app.command("push")
def review_push_cmd(
    limit: Annotated[int | None, typer.Option(min=1, help="push at most this many disputes")] = None,
) -> None:
    """Send every open dispute to Label Studio as a task (once), with the model's prediction as a
    pre-annotation and the agents' decisions as context. Registers the webhook when it is configured."""
    from triage_ml.review.push import add_webhooks, push

    settings, store, ls = _review_context()
    try:
        report = push(store, ls, limit=limit, overlap=settings.review_leads_per_task)
        typer.echo(f"disputes project {report.project_id} at {ls.base_url}: {report.created} task(s) created, "
                   f"{report.adopted} recovered from an interrupted push, {report.already_pushed} already there")
        if settings.label_studio_webhook_url and settings.label_studio_webhook_secret:
            hook = add_webhooks(store, ls, settings.label_studio_webhook_url,
                                settings.label_studio_webhook_secret.get_secret_value(),
                                overlap=settings.review_leads_per_task)
            typer.echo(f"webhook {hook}: annotations are posted to {settings.label_studio_webhook_url}")
    finally:
        store.dispose()


@review_app.command("pull")
def review_pull_cmd() -> None:
    """Read leads' annotations back: valid, agreeing answers become lead labels and close their dispute or
    queue item; contradictions and disagreements are reported and stay open."""
    from triage_ml.review.pull import pull

    _, store, ls = _review_context()
    try:
        report = pull(store, ls)
    finally:
        store.dispose()
    typer.echo(f"read {report.annotations} annotation(s) on {report.tasks} task(s): {len(report.resolved)} "
               f"dispute(s) resolved, {len(report.answered)} queue item(s) answered")
    for line in report.problems:
        typer.echo(f"  not stored: {line}")
    for line in report.disagreements:
        typer.echo(f"  open: {line}")


@review_app.command("suggest")
def review_suggest_cmd(
    n: Annotated[int, typer.Option("--n", min=1, max=10_000, help="messages to add to the review queue")] = 50,
    model: Annotated[str | None, typer.Option(help="model URI; default models:/<name>@<alias>")] = None,
) -> None:
    """Active learning: add the most useful unlabeled or agent-only messages to the review-queue project,
    each with the reason it was chosen."""
    from triage_ml.review.suggest import suggest

    settings, store, ls = _review_context()
    try:
        loaded, name, version, oof = _model_with_oof(settings, model)
        report = suggest(store, ls, loaded, name, version, n, oof=oof, overlap=settings.review_leads_per_task)
    finally:
        store.dispose()
    typer.echo(f"review queue project {report.project_id}: {len(report.added)} of {report.candidates} candidate "
               f"message(s) added (model {name} v{version})")
    for c in report.added:
        typer.echo(f"  {c.message_id}: " + "; ".join(w["detail"] for w in c.why))


def _model_with_oof(settings: Settings, uri: str | None, *,
                    oof: bool = True) -> tuple[TriageModel, str, str, pd.DataFrame | None]:
    """The model, its registered name and version, and its training run's out-of-fold table (None when
    the run has none, or not asked for)."""
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from triage_ml.model.pyfunc import load_registered
    from triage_ml.pipeline.tracking import configure_mlflow

    client = configure_mlflow(settings)
    uri = uri or settings.model_uri()
    try:
        info = mlflow.models.get_model_info(uri)
    except MlflowException:
        raise TriageError(f"no model at {uri}; train one with `triage-ml train`") from None
    name = settings.registered_model_name
    versions = client.search_model_versions(f"name='{name}' and run_id='{info.run_id}'")
    version = str(versions[0].version) if versions else info.run_id[:8]
    table = None
    if oof:
        try:
            table = pd.read_parquet(mlflow.artifacts.download_artifacts(run_id=info.run_id,
                                                                        artifact_path="oof_predictions.parquet"))
        except (MlflowException, OSError):
            table = None
    model = load_registered(uri, backend=settings.encoder_backend, threads=settings.torch_threads)
    return model, name, version, table


@review_app.command("stats")
def review_stats_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Lead agreement per head (Cohen's kappa where two or more leads annotated a task) and review counts."""
    from triage_ml.review.agreement import review_stats
    from triage_ml.store.db import Store

    store = Store(_settings().database_url)
    try:
        stats = review_stats(store)
    finally:
        store.dispose()
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    d, q = stats["disputes"], stats["queue"]
    typer.echo(f"disputes: {d['open']} open ({d['open_in_label_studio']} in Label Studio), {d['resolved']} resolved "
               f"({d['resolved_in_label_studio']} in Label Studio); review queue: {q['open']} open, "
               f"{q['answered']} answered")
    typer.echo(f"annotations: {stats['annotations']} ({stats['invalid_annotations']} not stored: contradict the "
               f"taxonomy); tasks with two or more leads: {stats['tasks_with_two_or_more_leads']}")
    for head, h in stats["heads"].items():
        k = "n/a" if h["kappa"] is None else f"{h['kappa']:.3f}"
        agree = "n/a" if h["agreement"] is None else f"{h['agreement']:.1%}"
        typer.echo(f"  {head:<14} Cohen's kappa {k:>6}  agreement {agree:>6}  ({h['pairs']} pair(s) of answers)")


def _since(text: str) -> datetime:
    """'7d', '24h', '90m' before now, or an ISO date/time."""
    import re
    from datetime import UTC, timedelta

    match = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if match:
        n, unit = int(match[1]), match[2]
        name = {"d": "days", "h": "hours", "m": "minutes"}[unit]
        return datetime.now(UTC) - timedelta(**{name: n})
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise TriageError(f"--since '{text}': use a duration like 7d, 24h or 90m, or an ISO date such as "
                          "2026-11-01") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@report_app.command("drift")
def report_drift_cmd(
    since: Annotated[str, typer.Option(help="recent window start: 7d, 24h, 90m or an ISO date")] = "7d",
    out: Annotated[Path, typer.Option(help="folder for drift.png and drift.json")] = Path("reports"),
    model: Annotated[str | None, typer.Option(help="model URI; default models:/<name>@<alias>")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many recent messages (newest first)")] = 20_000,
) -> None:
    """Recent messages (label store) against the model's training set: PSI per head, embedding centroid
    distance per channel and brand; a plot and a JSON, also logged to MLflow."""
    from datetime import UTC

    import matplotlib.pyplot as plt
    import mlflow

    from triage_ml.monitoring.drift import drift_figure, drift_report, recent_messages
    from triage_ml.store.db import Store

    settings = _settings()
    start, end = _since(since), datetime.now(UTC)
    store = Store(settings.database_url)
    try:
        recent = recent_messages(store, start, end, limit)
    finally:
        store.dispose()
    if recent.empty:
        raise TriageError(f"no messages in the label store since {start.isoformat(timespec='minutes')}; score "
                          "messages with a message_id (they are recorded) or widen --since")
    loaded, name, version, oof = _model_with_oof(settings, model)
    if oof is None:
        raise TriageError(f"{name} v{version} has no out-of-fold table in its run; retrain it to compare drift")
    report = drift_report(loaded, oof, recent)
    out.mkdir(parents=True, exist_ok=True)
    fig = drift_figure(report)
    fig.savefig(out / "drift.png", dpi=110)
    (out / "drift.json").write_text(json.dumps({"model": f"{name} v{version}", "since": start.isoformat(),
                                                "until": end.isoformat(), **report.to_dict()}, indent=2))
    mlflow.set_experiment(f"{settings.experiment_name}-monitoring")
    with mlflow.start_run(run_name=f"drift-{end:%Y%m%dT%H%M}"):
        mlflow.log_params({"model": f"{name} v{version}", "since": start.isoformat(), "n_recent": len(recent)})
        mlflow.log_metrics({f"psi.{h}": v["psi"] for h, v in report.heads.items() if v["psi"] == v["psi"]})
        mlflow.log_figure(fig, "drift.png")
        mlflow.log_dict(report.to_dict(), "drift.json")
    plt.close(fig)
    typer.echo(f"{len(recent)} recent messages since {start.isoformat(timespec='minutes')} vs {report.n_train} "
               f"training messages of {name} v{version}")
    for head, h in report.heads.items():
        typer.echo(f"  {head:<14} PSI {h['psi']:.3f} ({h['level']})  positive: training {h['train_positive']:.1%}, "
                   f"recent {h['recent_positive']:.1%}")
    for g in report.groups:
        typer.echo(f"  {g['group']:<28} n={g['n_recent']:<6} centroid distance {g['centroid_distance']:.4f}  "
                   f"actionable {g['recent_actionable']:.1%}  crisis {g['recent_crisis']:.1%}")
    typer.echo(f"plot {out / 'drift.png'}; table {out / 'drift.json'}")


@app.command("score-batch")
def score_batch_cmd(
    source: Annotated[Path, typer.Argument(help="messages to score (CSV, JSONL or Parquet; a 'text' column)")],
    out: Annotated[Path, typer.Option(help="scored rows (.csv, .jsonl or .parquet)")],
    model: Annotated[str | None, typer.Option(help="model URI; default models:/<name>@<alias>")] = None,
    rejects: Annotated[Path | None, typer.Option(help="rows that fail validation, with the reason (JSONL); "
                                                 "default <out>.rejects.jsonl")] = None,
    chunk_size: Annotated[int, typer.Option(min=1, max=1_000_000, help="rows read, scored and written at a "
                                            "time (memory is bounded by this, not by the file)")] = 2000,
    text_column: Annotated[str, typer.Option(help="the column holding the message text")] = "text",
    restart: Annotated[bool, typer.Option("--restart", help="start over instead of resuming an interrupted "
                                          "run, overwriting --out")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar with messages/s")] = True,
) -> None:
    """Score a file of any size in constant memory with the API's fields plus the model version. An
    interrupted run resumes from its last finished chunk when run again."""
    from triage_ml.batch.score import score_file
    from triage_ml.routing import EscalationMap
    from triage_ml.scoring import LoadedModel

    settings = _settings()
    loaded_model, name, version, _ = _model_with_oof(settings, model, oof=False)
    loaded = LoadedModel(loaded_model, name, version, settings.model_alias)
    routes = EscalationMap.from_yaml(settings.routing_path)
    state = score_file(source, out, loaded, routes, rejects=rejects, chunk_size=chunk_size, text_column=text_column,
                       restart=restart, progress=progress)
    rate = state.rows_read / max(state.seconds, 1e-9)
    rejected = rejects or out.with_name(f"{out.stem}.rejects.jsonl")
    typer.echo(f"read {state.rows_read} rows: {state.rows_scored} scored into {out}, {state.rows_rejected} "
               f"rejected{f' into {rejected}' if state.rows_rejected else ''} ({name} v{version}, "
               f"{rate:.0f} msgs/s; {state.repeated} repeated texts scored once)")
    typer.echo(f"peak memory {state.peak_rss_mb:.0f} MB ({state.peak_rss_mb_early:.0f} MB after the first 5 chunks "
               f"of {chunk_size})")


@app.command("spark-score")
def spark_score_cmd(
    source: Annotated[str, typer.Argument(help="a Parquet file or directory of messages")],
    output: Annotated[str, typer.Argument(help="the Parquet directory to write")],
    master: Annotated[str, typer.Option(help="Spark master, e.g. local[*] or yarn")] = "local[*]",
    model: Annotated[str | None, typer.Option(help="model URI; default models:/<name>@<alias>")] = None,
    text_col: Annotated[str, typer.Option(help="the column holding the message text")] = "text",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace OUTPUT if it exists")] = False,
) -> None:
    """Score Parquet with Spark through the registered pyfunc (mlflow spark_udf) and the escalation map
    (TRIAGE_ROUTING_PATH): the input's columns plus the prediction and route columns and the model version."""
    from triage_ml.spark import score_parquet

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.master(master).appName("triage-ml spark-score").getOrCreate()
    try:
        written = score_parquet(spark, source, output, text_col=text_col, model_uri=model, overwrite=overwrite)
    finally:
        spark.stop()
    typer.echo(f"scored {written} messages into {output}")


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes, each with its own model")] = 1,
) -> None:
    """Run the scoring API (FastAPI under uvicorn). Needs TRIAGE_API_KEYS (or a .env with it)."""
    import uvicorn

    settings = _settings()
    if not settings.keys():
        raise TriageError("no API keys configured: set TRIAGE_API_KEYS to role:key pairs, e.g. "
                          "scorer:<key>,admin:<key> (or run `triage-ml dev-keys` to write development keys to .env)")
    uvicorn.run("serving.main:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="info", access_log=False)


@app.command("dev-keys")
def dev_keys_cmd(
    env_file: Annotated[Path, typer.Option(help="file to write (git-ignored)")] = Path(".env"),
) -> None:
    """Write development API keys for every role to .env (kept if already there) and print them."""
    import secrets

    from triage_ml.settings import ROLES, parse_api_keys

    if os.environ.get("TRIAGE_API_KEYS"):
        typer.echo("TRIAGE_API_KEYS is set in the environment; no development keys written")
        return
    lines = env_file.read_text().splitlines() if env_file.exists() else []
    existing = next((ln.split("=", 1)[1] for ln in lines if ln.startswith("TRIAGE_API_KEYS=")), None)
    if existing is None:
        existing = ",".join(f"{role}:{secrets.token_urlsafe(24)}" for role in ROLES)
        env_file.write_text("\n".join([*lines, f"TRIAGE_API_KEYS={existing}"]) + "\n")
        env_file.chmod(0o600)
        typer.echo(f"wrote development keys to {env_file} (git-ignored; for local use only):")
    else:
        typer.echo(f"development keys from {env_file}:")
    for role, key in parse_api_keys(existing):
        typer.echo(f"  {role:<7} {key}")


@model_app.command("info")
def model_info_cmd() -> None:
    """Registered versions, aliases and headline metrics."""
    from triage_ml.pipeline.tracking import configure_mlflow

    settings = _settings()
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


def main() -> None:
    """Entry point: run the CLI, turning our errors into one line and exit status 2."""
    import click

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = app(standalone_mode=False)
    except TriageError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
