"""The ``triage-ml`` command line. Errors the user can fix print one line and exit with status 2."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from triage_ml.errors import TriageError

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
) -> None:
    """Cross-validate, fit, log to MLflow and register a model; promote it if it is no worse."""
    from triage_ml.pipeline.config import TrainConfig
    from triage_ml.pipeline.registry import alias_version
    from triage_ml.pipeline.tracking import configure_mlflow, train_and_log

    settings = _settings()
    cfg = TrainConfig.from_yaml(config)
    if if_missing:
        existing = alias_version(configure_mlflow(settings), settings.registered_model_name, settings.model_alias)
        if existing is not None:
            typer.echo(f"{settings.registered_model_name}@{settings.model_alias} is version {existing.version}; "
                       "nothing to train (drop --if-missing to train anyway)")
            return
    paths: list[Path] = list(data or [DEFAULT_SEED])
    extra: dict[str, str] = {}
    if from_store:
        export, digest, rows = _export_store(settings, Path("data/exports"))
        if rows:
            paths.append(export)
        typer.echo(f"label store: {rows} labeled messages (export {digest[:12]})")
        extra = {"store_export_hash": digest, "store_export_rows": str(rows), "store_export": str(export.resolve())}
    outcome = train_and_log(paths, cfg, settings, register=register, progress=progress, later_wins=from_store,
                            extra_params=extra)
    cv = outcome.result.cv
    typer.echo(f"trained on {outcome.result.n_rows} messages (data {outcome.result.data_hash[:12]}), "
               f"{cfg.cv_folds}-fold out-of-fold metrics:")
    for head, m in cv.metrics.items():
        extra = (f"  recall {m['recall_at_threshold']:.3f}  precision {m['precision_at_threshold']:.3f}"
                 if head == "crisis" else "")
        typer.echo(f"  {head:<14} macro F1 {m['macro_f1']:.3f}  PR-AUC {m['pr_auc']:.3f}  "
                   f"Brier {m['brier']:.3f}  threshold {m['threshold']:.2f}{extra}")
    typer.echo(f"run {outcome.run_id}; model {outcome.model_uri}")
    if outcome.gate is not None:
        typer.echo(f"version {outcome.version} {outcome.gate.summary()}")
    typer.echo(f"MLflow UI: .venv/bin/mlflow ui --backend-store-uri {settings.resolved_tracking_uri()}")


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
) -> None:
    """10-fold macro F1 for complaint detection and complaint severity; prints one JSON line."""
    from triage_ml.benchmark.xci import run_xci_benchmark
    from triage_ml.features.encoder import BACKENDS
    from triage_ml.pipeline.config import TrainConfig

    if backend not in BACKENDS:
        raise TriageError(f"unknown backend '{backend}'; use one of {', '.join(BACKENDS)}")
    result = run_xci_benchmark(path, TrainConfig.from_yaml(config), _settings(), folds=folds, backend=backend)
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
