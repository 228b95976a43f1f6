"""Spark on local[2] scores with the registered pyfunc and answers what the API answers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.service_fixtures import RunningService

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).parent / "triage-ml")


@pytest.fixture(scope="module")
def spark(trained_store):
    settings, _ = trained_store
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    # the Python workers load the pyfunc and read the same settings as the driver
    os.environ["TRIAGE_MLRUNS_DIR"] = str(settings.mlruns_dir)
    session = (SparkSession.builder.master("local[2]").appName("triage-ml tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate())
    yield session
    session.stop()


def test_spark_answers_what_the_api_answers(spark, trained_store, seed, tmp_path):
    from triage_ml.routing import EscalationMap
    from triage_ml.spark import OUTPUT_COLUMNS, score

    settings, outcome = trained_store
    sample = seed.iloc[::8][["message_id", "text", "brand"]].reset_index(drop=True)  # 194 messages
    scored = score(spark.createDataFrame(sample), model_uri=f"models:/triage-ml/{outcome.version}",
                   settings=settings).toPandas()
    assert list(scored.columns) == ["message_id", "text", "brand", *OUTPUT_COLUMNS]
    assert list(scored["message_id"]) == list(sample["message_id"])
    assert set(scored["model_version"]) == {outcome.version}

    service = RunningService(settings, tmp_path, TRIAGE_MODEL_POLL_SECONDS="0").start()
    try:
        with service.client("scorer") as c:
            api = c.post("/v1/score", json={"messages": [{"text": t} for t in sample["text"]]}).json()["results"]
    finally:
        service.stop()
    routes = EscalationMap.from_yaml(service.routing)
    compared = 0
    for row, answer, text in zip(scored.itertuples(), api, sample["text"], strict=True):
        if routes.topics_in(text):  # the service's watch list lifts crisis_risk; the model alone does not
            continue
        compared += 1
        assert (bool(row.actionable), bool(row.crisis)) == (answer["actionable"], answer["crisis"])
        assert (None if pd.isna(row.priority_tier) else int(row.priority_tier)) == answer["priority_tier"]
        assert row.actionable_prob == pytest.approx(answer["actionable_prob"], abs=1e-5)
        assert row.crisis_risk == pytest.approx(answer["crisis_risk"], abs=1e-5)
    assert compared >= 0.9 * len(sample)


def test_spark_score_command_on_parquet(spark, trained_store, seed, tmp_path):
    settings, outcome = trained_store
    source = tmp_path / "in"
    source.mkdir()
    seed.iloc[:60][["message_id", "text"]].to_parquet(source / "part-0.parquet", index=False)
    env = {**os.environ, "TRIAGE_MLRUNS_DIR": str(settings.mlruns_dir), "PYSPARK_PYTHON": sys.executable}
    run = subprocess.run([CLI, "spark-score", str(source), str(tmp_path / "out"), "--master", "local[2]"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "scored 60 messages" in run.stdout
    out = pd.read_parquet(tmp_path / "out")
    assert len(out) == 60 and set(out["model_version"]) == {outcome.version} and out["actionable"].notna().all()
