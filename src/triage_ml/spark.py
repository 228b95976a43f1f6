"""Spark scoring of the registered model: the MLflow pyfunc as a Spark UDF, so there is no second
implementation to drift from the service.

    from triage_ml.spark import score
    scored = score(spark.read.parquet("messages/"), text_col="text")

Each Python worker loads the model once. Give each worker as many encoder threads as cores it owns
(``TRIAGE_TORCH_THREADS`` in the executor environment), or the workers on one executor fight over cores.
The watch-list floor on ``crisis_risk`` belongs to the service's escalation map, not to the model, so it
is not applied here; everything else equals what ``/v1/score`` answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from triage_ml.settings import Settings

# priority_tier travels as a double: MLflow's UDF casts each column with numpy, which has no missing integer,
# and noise has no tier. It comes out as a nullable long.
RESULT_TYPE = ("actionable boolean, actionable_prob double, priority_tier double, tier1_prob double, "
               "tier2_prob double, crisis_risk double, crisis boolean")
_NULLABLE = {"priority_tier": "long", "tier1_prob": "double", "tier2_prob": "double"}
OUTPUT_COLUMNS = ("actionable", "actionable_prob", "priority_tier", "tier1_prob", "tier2_prob", "crisis_risk",
                  "crisis", "model_version")


def resolve(model_uri: str | None, settings: Settings | None = None) -> tuple[str, str]:
    """(a models:/name/version URI, that version) for ``model_uri`` (default: the configured alias)."""
    from mlflow import MlflowClient

    from triage_ml.pipeline.tracking import connect_mlflow
    from triage_ml.settings import get_settings

    settings = settings or get_settings()
    connect_mlflow(settings)
    uri = model_uri or settings.model_uri()
    if uri.startswith("models:/") and "@" in uri:
        name, alias = uri.removeprefix("models:/").split("@", 1)
        version = str(MlflowClient().get_model_version_by_alias(name, alias).version)
        return f"models:/{name}/{version}", version
    if uri.startswith("models:/"):
        return uri, uri.rsplit("/", 1)[-1]
    return uri, uri


def score(df: DataFrame, text_col: str = "text", model_uri: str | None = None, *, env_manager: str = "local",
          settings: Settings | None = None) -> DataFrame:
    """``df`` with the prediction columns (OUTPUT_COLUMNS) added; rows keep their order and other columns.
    ``settings``: where the registry is (default: the environment's)."""
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    uri, version = resolve(model_uri, settings)
    udf = mlflow.pyfunc.spark_udf(df.sparkSession, uri, result_type=RESULT_TYPE, env_manager=env_manager)
    scored = df.withColumn("__triage", udf(F.struct(F.col(text_col).cast("string").alias("text"))))

    def column(name: str) -> Column:
        value = F.col(f"__triage.{name}")
        if name in _NULLABLE:  # noise: no tier, no tier probabilities (null, not NaN)
            value = F.when(F.isnan(value), F.lit(None)).otherwise(value).cast(_NULLABLE[name])
        return value.alias(name)

    return (scored.select("*", *[column(c) for c in OUTPUT_COLUMNS[:-1]])
            .drop("__triage").withColumn("model_version", F.lit(version)))


def score_parquet(spark: SparkSession, source: str, output: str, *, text_col: str = "text",
                  model_uri: str | None = None, overwrite: bool = False) -> int:
    """Score a Parquet file or directory into a Parquet directory; returns the rows written."""
    score(spark.read.parquet(source), text_col=text_col, model_uri=model_uri) \
        .write.mode("overwrite" if overwrite else "errorifexists").parquet(output)
    return spark.read.parquet(output).count()


def main(argv: list[str] | None = None) -> None:
    """The spark-submit entry point: ``spark-submit .../triage_ml/spark.py INPUT OUTPUT [--model URI]``."""
    import argparse

    from pyspark.sql import SparkSession

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
    finally:
        spark.stop()
    print(f"scored {n} messages into {args.output}")


if __name__ == "__main__":
    main()
