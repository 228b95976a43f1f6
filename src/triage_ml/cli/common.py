"""What the command modules share: the Typer apps, defaults, and helpers that reach the registry and store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from triage_ml.errors import TriageError

if TYPE_CHECKING:
    import pandas as pd

    from triage_ml.model.triage_model import TriageModel
    from triage_ml.settings import Settings

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
keys_app = typer.Typer(help="Personal API keys in the label store: one per person, with a role and their name.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")

DEFAULT_CONFIG = Path("training/configs/default.yaml")
DEFAULT_SEED = Path("data/seed/messages.csv")


def settings_from_env() -> Settings:
    """The validated settings (environment and .env), read once per process."""
    from triage_ml.settings import get_settings

    return get_settings()


def store_table(settings: Settings) -> tuple[pd.DataFrame, str]:
    """The label store's training table (``labels.export.training_table``) and its hash."""
    from triage_ml.labels.export import table_hash, training_table
    from triage_ml.store.db import Store

    store = Store(settings.database_url)
    try:
        table = training_table(store)
    finally:
        store.dispose()
    return table, table_hash(table)


def export_store(settings: Settings, folder: Path) -> tuple[Path, str, int]:
    """The store's export for training (``train --from-store``, ``retrain``): Parquet, read back exactly."""
    from triage_ml.labels.export import write_export

    table, digest = store_table(settings)
    return write_export(table, folder / f"labels-{digest[:12]}.parquet"), digest, len(table)


def model_with_oof(settings: Settings, uri: str | None, *,
                    oof: bool = True) -> tuple[TriageModel, str, str, pd.DataFrame | None]:
    """The model, its registered name and version, and its training run's out-of-fold table (None when
    the run has none, or not asked for)."""
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from triage_ml.registry import client_for, load, resolve_uri

    client = client_for(settings)
    uri = uri or settings.model_uri()
    try:
        name, version, _ = resolve_uri(client, uri)
        run_id = client.get_model_version(name, version).run_id
    except MlflowException:
        raise TriageError(f"no model at {uri}; train one with `triage-ml train`") from None
    table = None
    if oof and run_id:
        try:
            table = pd.read_parquet(client.download_artifacts(run_id, "oof_predictions.parquet"))
        except (MlflowException, OSError):
            table = None
    model = load(client, uri, backend=settings.encoder_backend, threads=settings.torch_threads)
    return model, name, version, table

