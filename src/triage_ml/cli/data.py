"""Commands for labeled data: validate, import, the public benchmark, the label store's export and schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from triage_ml.cli.common import (
    DEFAULT_CONFIG,
    benchmark_app,
    data_app,
    db_app,
    labels_app,
    settings_from_env,
    store_table,
)
from triage_ml.errors import TriageError


@data_app.command("validate")
def validate_cmd(path: Annotated[Path, typer.Argument(help="labeled file")]) -> None:
    """Check a labeled file against the contract and print its label counts."""
    from triage_ml.data.schema import LABEL_COLUMNS, load_labeled

    df = load_labeled(path)
    typer.echo(f"{path}: {len(df)} messages OK")
    for col in LABEL_COLUMNS:
        counts = df[col].astype("string").fillna("unknown").value_counts().to_dict()
        typer.echo(f"  {col}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@data_app.command("agreement")
def agreement_cmd(
    second: Annotated[Path, typer.Argument(help="the other annotator's labels (same columns as the label file)")] = (
        Path("data/real/xci_labels_second_pass.csv")),
    labels: Annotated[Path, typer.Option(help="the final label file")] = Path("data/real/xci_labels.csv"),
    changes: Annotated[Path, typer.Option(help="first-pass labels where the final ones differ")] = (
        Path("data/real/xci_label_changes.csv")),
) -> None:
    """Agreement (share identical, Cohen's kappa) between the first annotation pass and another (JSON)."""
    from triage_ml.data.agreement import pass_agreement

    typer.echo(json.dumps(pass_agreement(labels, second, changes), indent=2))


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
    path: Annotated[Path, typer.Argument(help="xci_complaints.csv")] = Path("data/public/xci_complaints.csv"),
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
    result = run_xci_benchmark(path, TrainConfig.from_yaml(config), settings_from_env(), folds=folds, backend=backend,
                               finetune=finetune)
    typer.echo(json.dumps(result))


@labels_app.command("export")
def labels_export_cmd(
    out: Annotated[Path, typer.Option(help="output file: .csv to open in a spreadsheet (cells that would run as "
                                           "formulas get a leading '), .parquet or .jsonl for code (exact)")],
) -> None:
    """Write the training table built from the store: one row per labeled message, lead > agents agreeing
    > one agent > seed/import, with each head's source and the label ids used. Deterministic."""
    from triage_ml.labels.export import write_export

    table, digest = store_table(settings_from_env())
    write_export(table, out)
    typer.echo(f"wrote {len(table)} labeled messages to {out} (sha256 {digest[:12]})")


@db_app.command("upgrade")
def db_upgrade_cmd(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Apply the label store's migrations (the service also does this on start)."""
    from triage_ml.store.db import current_revision, make_engine, migrate

    settings = settings_from_env()
    engine = make_engine(settings.database_url)
    try:
        migrate(engine, revision)
        typer.echo(f"{engine.url.render_as_string(hide_password=True)} at revision {current_revision(engine)}")
    finally:
        engine.dispose()


def _erase(what: str, erase: Callable[..., dict[str, int]], *args: Any) -> None:
    """Run an erasure on the configured store as the person at the keyboard, and say what it erased."""
    from triage_ml.store.audit import cli_actor
    from triage_ml.store.db import Store

    store = Store(settings_from_env().database_url)
    try:
        counts = erase(store, *args, cli_actor())
    finally:
        store.dispose()
    typer.echo(f"erased {counts['messages']} message(s){what}, with {counts['predictions']} prediction(s), "
               f"{counts['decisions']} decision(s) and {counts['drafts']} draft(s) of them")


@db_app.command("purge")
def db_purge_cmd(days: Annotated[float | None, typer.Option(
        min=0.001, help="erase texts older than this; default TRIAGE_RETENTION_DAYS")] = None) -> None:
    """Erase the texts and handles of messages older than the retention period (README, "Privacy")."""
    from triage_ml.store.erasure import purge_older_than

    days = days if days is not None else settings_from_env().retention_days
    if days is None:
        raise TriageError("no retention period: pass --days N or set TRIAGE_RETENTION_DAYS")
    _erase(f" older than {days:g} days", purge_older_than, days)


@db_app.command("erase-author")
def db_erase_author_cmd(
        author: Annotated[str, typer.Argument(help="the customer's handle, with or without @")]) -> None:
    """Erase one customer's messages and every copy of them (an erasure request); labels stay, anonymous."""
    from triage_ml.store.erasure import erase_author

    _erase("", erase_author, author)
