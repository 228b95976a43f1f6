"""Commands that score or serve: score-batch, spark-score, serve, dev-keys."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from triage_ml.cli.common import app, model_with_oof, settings_from_env
from triage_ml.errors import TriageError


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

    settings = settings_from_env()
    loaded_model, name, version, _ = model_with_oof(settings, model, oof=False)
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
    from triage_ml.spark import check_paths, score_parquet

    check_paths(source, output, overwrite=overwrite, text_col=text_col)  # before the session: fails in a second
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

    settings = settings_from_env()
    if not settings.keys():
        raise TriageError("no API keys configured: set TRIAGE_API_KEYS to role:key pairs, e.g. "
                          "scorer:<key>,admin:<key> (or run `triage-ml dev-keys` to write development keys to .env)")
    uvicorn.run("serving.main:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="info", access_log=False)


@app.command("dev-keys")
def dev_keys_cmd(
    env_file: Annotated[Path, typer.Option(help="file to write (git-ignored)")] = Path(".env"),
) -> None:
    """Write development API keys for every role to .env (kept if already there) and print them. They begin
    with a marker (triage-dev-) so that TRIAGE_ENVIRONMENT=production refuses to start with them."""
    from triage_ml.settings import DEV_KEY_PREFIX, ROLES, dev_key, is_dev_key, parse_api_keys

    if os.environ.get("TRIAGE_API_KEYS"):
        typer.echo("TRIAGE_API_KEYS is set in the environment; no development keys written")
        return
    lines = env_file.read_text().splitlines() if env_file.exists() else []
    existing = next((ln.split("=", 1)[1] for ln in lines if ln.startswith("TRIAGE_API_KEYS=")), None)
    if existing is None:
        existing = ",".join(f"{role}:{dev_key()}" for role in ROLES)
        env_file.write_text("\n".join([*lines, f"TRIAGE_API_KEYS={existing}"]) + "\n")
        env_file.chmod(0o600)
        typer.echo(f"wrote development keys to {env_file} (git-ignored; for local use only):")
    else:
        typer.echo(f"development keys from {env_file}:")
    pairs = parse_api_keys(existing)
    for role, key in pairs:
        typer.echo(f"  {role:<7} {key}")
    if not all(is_dev_key(key) for _, key in pairs):
        typer.echo(f"note: keys without the {DEV_KEY_PREFIX} marker are not recognised as development keys by "
                   f"TRIAGE_ENVIRONMENT=production; if these are, delete the TRIAGE_API_KEYS line from {env_file} "
                   "and run this again")
