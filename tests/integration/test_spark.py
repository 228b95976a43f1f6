"""Spark on local[2] scores with the registered pyfunc and answers what the API answers."""

from __future__ import annotations

import os
import shutil
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

    with pytest.MonkeyPatch.context() as env:  # put back for the modules after this one
        env.setenv("PYSPARK_PYTHON", sys.executable)
        # the Python workers load the pyfunc and read the same settings as the driver
        env.setenv("TRIAGE_MLRUNS_DIR", str(settings.mlruns_dir))
        session = (SparkSession.builder.master("local[2]").appName("triage-ml tests")
                   .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate())
        yield session
        session.stop()


def test_spark_answers_what_the_api_answers(spark, trained_store, seed, tmp_path):
    from triage_ml.routing import EscalationMap
    from triage_ml.spark import OUTPUT_COLUMNS, score

    settings, outcome = trained_store
    sample = seed.iloc[::8][["message_id", "text", "brand"]].reset_index(drop=True)  # 194 messages
    sample["author"] = None
    # the escalation map must act as in the service: a blocked author, and watch-list topics on messages
    # the heads call noise (the floor lifts their crisis risk) and on ordinary ones
    sample.loc[0, "author"] = "@spammy"
    extra = pd.DataFrame({"message_id": ["w1", "w2", "w3"], "brand": [None, "Munchly", None],
                          "author": [None, None, "spammy"],
                          "text": ["lol my lawyer would love this meme", "my son is in A&E after your nuggets",
                                   "sue me, best coffee in town"]})
    sample = pd.concat([sample, extra], ignore_index=True)
    # one row answers a brand's turn (the optional thread columns): the model's thread head reads it
    sample["in_reply_to_text"], sample["in_reply_to_from"] = None, None
    sample.loc[1, ["in_reply_to_text", "in_reply_to_from"]] = ["did the replacement card arrive?", "brand"]
    routing = tmp_path / "spark-routing.yaml"
    routing.write_text(Path("serving/routing.yaml").read_text().replace("block: []", "block: ['@spammy']"))

    scored = score(spark.createDataFrame(sample), model_uri=f"models:/triage-ml/{outcome.version}",
                   settings=settings, routing=routing).toPandas()
    assert list(scored.columns) == ["message_id", "text", "brand", "author", "in_reply_to_text", "in_reply_to_from",
                                    *OUTPUT_COLUMNS]
    assert scored["thread_used"].tolist() == [False, True] + [False] * (len(sample) - 2)
    assert list(scored["message_id"]) == list(sample["message_id"])
    assert set(scored["model_version"]) == {outcome.version}

    service = RunningService(settings, tmp_path, TRIAGE_MODEL_POLL_SECONDS="0")
    shutil.copy(routing, service.routing)
    service.start()
    try:
        fields = sample[["text", "brand", "author"]].astype(object)
        messages = [{k: v for k, v in m.items() if v is not None}
                    for m in fields.where(fields.notna(), None).to_dict("records")]
        messages[1]["in_reply_to"] = {"text": sample.loc[1, "in_reply_to_text"], "from": "brand"}
        with service.client("scorer") as c:
            api = c.post("/v1/score", json={"messages": messages}).json()["results"]
    finally:
        service.stop()
    routes = EscalationMap.from_yaml(routing)
    for row, answer in zip(scored.itertuples(), api, strict=True):
        assert (bool(row.actionable), bool(row.crisis)) == (answer["actionable"], answer["crisis"])
        assert (None if pd.isna(row.priority_tier) else int(row.priority_tier)) == answer["priority_tier"]
        assert row.actionable_prob == pytest.approx(answer["actionable_prob"], abs=1e-5)
        assert row.crisis_risk == pytest.approx(answer["crisis_risk"], abs=1e-5)
        tier1 = None if pd.isna(row.tier1_prob) else row.tier1_prob
        assert tier1 == (None if answer["tier_probs"] is None else pytest.approx(answer["tier_probs"]["1"], abs=1e-5))
        kind = answer["crisis_kind"] or {"kind": None, "probability": None}
        assert (None if pd.isna(row.crisis_kind) else row.crisis_kind) == kind["kind"]
        assert (None if pd.isna(row.crisis_kind_prob) else row.crisis_kind_prob) == (
            None if kind["probability"] is None else pytest.approx(kind["probability"], abs=1e-5))
        team = None if pd.isna(row.route_team) else row.route_team
        sign_off = None if pd.isna(row.route_sign_off) else row.route_sign_off
        route = answer["route"]
        assert (row.route_action, team, row.route_rule, sign_off) == (route["action"], route["team"], route["rule"],
                                                                      route["approval"]["by"])
        assert (row.language, bool(row.low_confidence)) == (answer["language"]["code"], answer["low_confidence"])
        assert bool(row.thread_used) == bool(answer["thread"] and answer["thread"]["used"])
        assert list(row.sensitive_topics) == routes.topics_in(row.text) == answer["explanation"]["topics"]
    by_id = scored.set_index("message_id")
    assert by_id.loc[sample.loc[0, "message_id"], "route_action"] == "block"
    assert by_id.loc["w1", "crisis_risk"] >= routes.crisis_floor and by_id.loc["w1", "route_team"] == "pr"
    assert by_id.loc["w1", "route_sign_off"] == "pr"  # the shipped map: PR signs off replies to watch-list messages
    assert by_id.loc["w2", "crisis_risk"] >= routes.crisis_floor
    assert by_id.loc["w3", "route_action"] == "block"


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
    # the same command on bad input: one line naming the fix, exit status 2, no traceback
    for args, needle in [((str(source), str(tmp_path / "out")), "--overwrite"),
                         ((str(source), str(tmp_path / "out2"), "--text-col", "body"), "--text-col"),
                         ((str(tmp_path / "nowhere"), str(tmp_path / "out3")), "cannot read it as Parquet")]:
        bad = subprocess.run([CLI, "spark-score", *args, "--master", "local[2]"], env=env, capture_output=True,
                             text=True, timeout=600)
        assert bad.returncode == 2, bad.stderr[-2000:]
        assert needle in bad.stderr and "Traceback" not in bad.stderr, bad.stderr[-2000:]
