"""Spark scoring of the registered model: the MLflow pyfunc as a Spark UDF, so there is no second
implementation to drift from the service.

    from triage_ml.spark import score
    scored = score(spark.read.parquet("messages/"), text_col="text")

Each Python worker loads the model once. Give each worker as many encoder threads as cores it owns
(``TRIAGE_TORCH_THREADS`` in the executor environment), or the workers on one executor fight over cores.
The escalation map (read once on the driver and shipped with the job) is applied as the service applies it
(``scoring.escalate``): the watch-list floor on ``crisis_risk``, crises made actionable tier 1, and the
route from the message's author, channel, brand and is_private where the DataFrame has those columns.
Everything but the explanation equals what ``/v1/score`` answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd  # at module level: pandas_udf reads the type hints of the function it wraps

from triage_ml.routing import ROUTED_FIELDS
from triage_ml.taxonomy import SENTIMENT_COLUMNS
from triage_ml.thread import REPLY_COLUMNS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from triage_ml.settings import Settings

# priority_tier travels as a double: MLflow's UDF casts each column with numpy, which has no missing integer,
# and noise has no tier. It comes out as a nullable long.
RESULT_TYPE = ("actionable boolean, actionable_prob double, priority_tier double, tier1_prob double, "
               "tier2_prob double, crisis_risk double, crisis boolean, crisis_kind string, crisis_kind_prob double, "
               "thread_used boolean, sentiment string, " + ", ".join(f"{c} double" for c in SENTIMENT_COLUMNS))
# After the escalation map: the API's fields, with tier_probs and route flattened as in score-batch.
ESCALATED_TYPE = ("actionable boolean, actionable_prob double, priority_tier long, tier1_prob double, "
                  "tier2_prob double, crisis_risk double, crisis boolean, crisis_kind string, crisis_kind_prob double, "
                  "route_action string, route_team string, route_rule string, route_sign_off string, "
                  "sensitive_topics array<string>, language string, language_confidence double, "
                  "low_confidence boolean, thread_used boolean, sentiment string")
_ESCALATED_NAMES = [field.split()[0] for field in ESCALATED_TYPE.split(", ")]
OUTPUT_COLUMNS = (*_ESCALATED_NAMES, "model_version")
_MODEL_FIELDS = tuple(field.split()[0] for field in RESULT_TYPE.split(", "))


def resolve(model_uri: str | None, settings: Settings | None = None) -> tuple[str, str]:
    """(where the model's files are, its version) for ``model_uri`` (default: the configured alias). The
    location is the version's own, so the executors read it without asking the registry."""
    from triage_ml.registry import client_for, resolve_uri
    from triage_ml.settings import get_settings

    settings = settings or get_settings()
    uri = model_uri or settings.model_uri()
    if uri.startswith("models:/"):
        client = client_for(settings)
        name, version, _ = resolve_uri(client, uri)
        return client.get_model_version_download_uri(name, version), version
    return uri, uri


def crisis_threshold(uri: str) -> float:
    """The registered model's crisis threshold, read from its metadata file alone (no weights)."""
    import mlflow

    from triage_ml.model.pyfunc import ARTIFACT_KEY
    from triage_ml.model.triage_model import META_FILE

    meta = mlflow.artifacts.download_artifacts(artifact_uri=f"{uri}/artifacts/{ARTIFACT_KEY}/{META_FILE}")
    return float(json.loads(Path(meta).read_text())["thresholds"]["crisis"])


def _escalator(spec: dict[str, Any], threshold: float) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """A pandas UDF body: prediction + context rows in, the API's decision fields out (ESCALATED_TYPE)."""

    def escalate_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from triage_ml.messages import Message
        from triage_ml.routing import EscalationMap, RoutingMap
        from triage_ml.scoring import escalate
        from triage_ml.thread import reply_turn, thread_of

        routes = EscalationMap(RoutingMap.model_validate(spec))  # once per task, not per batch
        for batch in batches:
            rows = []
            for row in batch.to_dict("records"):
                row["text"] = row["text"] or ""  # a null text is scored as empty, as the model's UDF does
                if row["crisis_kind"] == "None":  # MLflow's UDF casts string fields with numpy: None -> "None"
                    row["crisis_kind"] = None
                context = {c: (None if pd.isna(row.get(c)) else row.get(c)) for c in ROUTED_FIELDS}
                if context["is_private"] is not None:
                    context["is_private"] = bool(context["is_private"])
                turn = reply_turn(row)  # as the model's UDF read it
                thread = None if turn is None else thread_of([], turn.text, turn.speaker)
                message = Message(text=row["text"], **context, thread=thread)
                flat = escalate(row, message, routes, threshold).flat()
                rows.append({**flat, "sensitive_topics": flat["topics"]})
            out = pd.DataFrame(rows, columns=_ESCALATED_NAMES)
            yield out.astype({"priority_tier": "Int64"})

    return escalate_batches


def score(df: DataFrame, text_col: str = "text", model_uri: str | None = None, *, env_manager: str = "local",
          settings: Settings | None = None, routing: str | Path | None = None) -> DataFrame:
    """``df`` with the prediction columns (OUTPUT_COLUMNS) added; rows keep their order and other columns.
    ``settings``: where the registry is (default: the environment's); ``routing``: the escalation map
    (default: the settings' ``routing_path``)."""
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    from triage_ml.routing import EscalationMap
    from triage_ml.settings import get_settings

    if text_col not in df.columns:
        raise missing_text_column(text_col, df.columns)
    settings = settings or get_settings()
    routes = EscalationMap.from_yaml(routing or settings.routing_path)  # a bad map fails here, on the driver
    uri, version = resolve(model_uri, settings)
    udf = mlflow.pyfunc.spark_udf(df.sparkSession, uri, result_type=RESULT_TYPE, env_manager=env_manager)
    escalate = F.pandas_udf(_escalator(routes.spec.model_dump(), crisis_threshold(uri)), ESCALATED_TYPE)
    text = F.col(text_col).cast("string").alias("text")
    context = [(F.col(c) if c in df.columns else F.lit(None)).cast("boolean" if c == "is_private" else "string")
               .alias(c) for c in ROUTED_FIELDS]
    # the turn each row answers (REPLY_COLUMNS), when the DataFrame has it: the model's thread head reads it
    reply = [(F.col(c) if c in df.columns else F.lit(None)).cast("string").alias(c) for c in REPLY_COLUMNS]
    # The model's struct is a column of its own first, so that the model runs once per row, not once per
    # field read from it. Its priority_tier is a double (NaN for noise); escalate reads NaN as no tier.
    scored = df.withColumn("__model", udf(F.struct(text, *reply)))
    decided = escalate(F.struct(text, *[F.col(f"__model.{c}").alias(c) for c in _MODEL_FIELDS], *context, *reply))
    return (scored.withColumn("__triage", decided)
            .select(*[F.col(f"`{c}`") for c in df.columns], *[F.col(f"__triage.{c}").alias(c)
                                                              for c in OUTPUT_COLUMNS[:-1]])
            .withColumn("model_version", F.lit(version)))


def check_paths(source: str, output: str, *, overwrite: bool = False, text_col: str | None = None) -> None:
    """What can be told about local paths before a Spark session starts (seconds, and a JVM): a source that
    is not there, an output that is, a text column the source's Parquet schema lacks. DataValidationError naming
    the fix; URIs (``s3://``) and what pyarrow cannot read are Spark's to check."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from triage_ml.errors import DataValidationError

    local = "://" not in source and not any(ch in source for ch in "*?[{")
    if local and not Path(source).exists():
        raise DataValidationError("cannot read it as Parquet (no such file or directory)", source=source)
    if "://" not in output and Path(output).exists() and not overwrite:
        raise DataValidationError("exists; pass --overwrite to replace it", source=output)
    if local and text_col is not None:
        try:
            names = ds.dataset(source, format="parquet").schema.names
        except (OSError, pa.ArrowInvalid):
            return
        if text_col not in names:
            raise missing_text_column(text_col, names)


def missing_text_column(text_col: str, columns: list[str]) -> Exception:
    """The one message for a text column that is not there, before Spark starts or after."""
    from triage_ml.errors import DataValidationError

    return DataValidationError(f"no such column among {', '.join(columns)}; name the text column "
                               "(text_col, --text-col)", column=text_col)


def score_parquet(spark: SparkSession, source: str, output: str, *, text_col: str = "text",
                  model_uri: str | None = None, overwrite: bool = False) -> int:
    """Score a Parquet file or directory into a Parquet directory; returns the rows written. Bad input (no
    such source, no text column, an output that exists) raises DataValidationError naming the fix."""
    from pyspark.errors import AnalysisException

    from triage_ml.errors import DataValidationError

    check_paths(source, output, overwrite=overwrite, text_col=text_col)
    try:
        df = spark.read.parquet(source)
    except AnalysisException as exc:
        raise DataValidationError(f"cannot read it as Parquet ({str(exc).splitlines()[0]})", source=source) from None
    score(df, text_col=text_col, model_uri=model_uri) \
        .write.mode("overwrite" if overwrite else "errorifexists").parquet(output)
    return spark.read.parquet(output).count()


def main(argv: list[str] | None = None) -> None:
    """The spark-submit entry point: ``spark-submit .../triage_ml/spark.py INPUT OUTPUT [--model URI]``."""
    import argparse
    import sys

    from pyspark.sql import SparkSession

    from triage_ml.errors import TriageError

    parser = argparse.ArgumentParser(description="Score Parquet messages with the registered triage-ml model.")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--model", default=None, help="model URI; default models:/<name>@<alias>")
    parser.add_argument("--text-col", default="text")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    spark = SparkSession.builder.appName("triage-ml spark-score").getOrCreate()
    try:
        n = score_parquet(spark, args.input, args.output, text_col=args.text_col, model_uri=args.model,
                          overwrite=args.overwrite)
    except TriageError as exc:  # bad input: one line and status 2, as from `triage-ml spark-score`
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    finally:
        spark.stop()
    print(f"scored {n} messages into {args.output}")


if __name__ == "__main__":
    main()
