"""Monitoring on replayed data: the drift report, spike alerts through the real service, shadow mode."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import FROZEN_CONFIG, XCI
from tests.integration.service_fixtures import RunningService, alerts, wait_for

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).parent / "triage-ml")
BURST = (Path(__file__).parents[1] / "data" / "outage_burst.txt").read_text().splitlines()


def store_messages(url: str, frame: pd.DataFrame, when: datetime) -> None:
    from triage_ml.store.db import Store
    from triage_ml.store.tables import MessageRow

    store = Store(url)
    store.write(lambda s: s.add_all(MessageRow(id=r.message_id, text=r.text, channel=r.channel, brand=r.brand,
                                               created_at=when) for r in frame.itertuples()))
    store.dispose()


def drift(settings, tmp_path: Path, name: str, frame: pd.DataFrame) -> dict:
    url = f"sqlite:///{(tmp_path / f'{name}.db').as_posix()}"
    store_messages(url, frame, datetime.now(UTC) - timedelta(days=1))
    out = tmp_path / name
    env = {"TRIAGE_DATABASE_URL": url, "TRIAGE_MLRUNS_DIR": str(settings.mlruns_dir),
           "TRIAGE_CACHE_DIR": str(settings.cache_dir), "TRIAGE_EXPERIMENT_NAME": settings.experiment_name}
    import os

    run = subprocess.run([CLI, "report", "drift", "--since", "7d", "--out", str(out)], capture_output=True,
                         text=True, timeout=600, env={**os.environ, **env})
    assert run.returncode == 0, run.stderr
    assert "PSI" in run.stdout and (out / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return json.loads((out / "drift.json").read_text())


def test_drift_report_tells_familiar_traffic_from_a_new_kind(trained_store, seed, tmp_path):
    settings, _ = trained_store
    familiar = seed.iloc[1::2].head(300)  # the half of the seed set the model did not train on
    tweets = pd.read_csv(XCI).sample(300, random_state=0)
    new = pd.DataFrame({"message_id": "x" + tweets["id"].astype(str), "text": tweets["tweet"],
                        "channel": "twitter", "brand": "(public tweets)"})
    same, other = drift(settings, tmp_path, "familiar", familiar), drift(settings, tmp_path, "tweets", new)
    overall = {r["group"]: r for r in same["groups"]}["all"]["centroid_distance"]
    shifted = {r["group"]: r for r in other["groups"]}["all"]["centroid_distance"]
    assert shifted > 3 * overall, (overall, shifted)
    assert same["heads"]["actionable"]["psi"] < 0.1 and same["heads"]["actionable"]["level"] == "stable"
    assert other["heads"]["actionable"]["psi"] > same["heads"]["actionable"]["psi"]
    assert {r["group"] for r in same["groups"]} >= {"all", "channel=twitter", "brand=SkyLark Air"}
    import mlflow

    mlflow.set_tracking_uri(settings.resolved_tracking_uri())
    runs = mlflow.search_runs(experiment_names=[f"{settings.experiment_name}-monitoring"])
    assert len(runs) == 2 and "metrics.psi.actionable" in runs


@pytest.fixture(scope="module")
def service(trained_store, tmp_path_factory):
    settings, _ = trained_store
    running = RunningService(settings, tmp_path_factory.mktemp("monitoring"), TRIAGE_MODEL_POLL_SECONDS="0").start()
    yield running
    running.stop()


def test_a_replayed_outage_raises_a_spike_alert_and_normal_traffic_does_not(service, seed):
    normal = seed[(seed["brand"] == "Nordtel") & (seed["actionable"] == True)]  # noqa: E712
    start = datetime(2026, 5, 28, 8, 0, tzinfo=UTC)
    t = start
    rows = []
    for i, text in enumerate(normal["text"]):
        t = start + timedelta(seconds=90 * (i + 1))
        rows.append({"text": text, "brand": "Nordtel", "created_at": t.isoformat(), "message_id": f"sp-n{i}"})
    with service.client("scorer") as c:
        for k in range(0, len(rows), 10):  # batches in time order, as an inbox would send them
            assert c.post("/v1/score", json={"messages": rows[k:k + 10]}).status_code == 200
    assert wait_for(service, t)["alerts"] == []  # a brand's ordinary day raises nothing

    with service.client("scorer") as c:
        for text in BURST:  # 20 outage reports in 8 minutes
            t += timedelta(seconds=24)
            c.post("/v1/score", json={"messages": [{"text": text, "brand": "Nordtel", "created_at": t.isoformat()}]})
    now = wait_for(service, t)
    assert now["enabled"] is True
    cluster = [a for a in now["alerts"] if a["kind"] == "cluster"]
    assert cluster and cluster[0]["brand"] == "Nordtel" and cluster[0]["value"] >= 6
    assert all(e["text"] in BURST for e in cluster[0]["examples"])
    with service.client(None) as c:
        metrics = c.get("/metrics").text
    assert 'triage_spike_active{brand="Nordtel",kind="cluster"} 1.0' in metrics


def test_shadow_mode_scores_aside_and_never_changes_the_answer(trained_store, seed, tmp_path):
    import mlflow
    from mlflow import MlflowClient

    from triage_ml.messages import Message
    from triage_ml.pipeline.config import TrainConfig
    from triage_ml.pipeline.tracking import configure_mlflow, train_and_log
    from triage_ml.registry import client_for, load
    from triage_ml.routing import EscalationMap
    from triage_ml.scoring import LoadedModel, score
    from triage_ml.store.db import Store
    from triage_ml.store.tables import PredictionRow

    settings, outcome = trained_store
    subset = tmp_path / "data.csv"
    seed.iloc[1::3].to_csv(subset, index=False)
    other = train_and_log([subset], TrainConfig.from_dict(FROZEN_CONFIG), settings, register=False, progress=False)
    client: MlflowClient = configure_mlflow(settings)
    shadow_version = mlflow.register_model(other.model_uri, settings.registered_model_name).version
    client.set_registered_model_alias(settings.registered_model_name, "shadow-candidate", shadow_version)

    service = RunningService(settings, tmp_path, TRIAGE_MODEL_POLL_SECONDS="0",
                             TRIAGE_SHADOW_ALIAS="shadow-candidate", TRIAGE_SPIKE_ALERTS="false").start()
    try:
        texts = seed["text"].iloc[::37].tolist()[:30]
        with service.client("scorer") as c:
            r = c.post("/v1/score", json={"messages": [{"text": t, "message_id": f"sh-{i}"}
                                                       for i, t in enumerate(texts)]})
        assert r.status_code == 200 and r.json()["model"]["version"] == outcome.version
        served = r.json()["results"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with service.client(None) as c:
                metrics = c.get("/metrics").text
            if "triage_shadow_scored_total 30.0" in metrics:
                break
            time.sleep(0.5)
        assert "triage_shadow_scored_total 30.0" in metrics, "the shadow model did not score the batch"
        watched = alerts(service)  # spike alerts were switched off: nothing was watched
        assert watched["enabled"] is False and watched["as_of"] is None and watched["alerts"] == []
    finally:
        service.stop()

    champion = LoadedModel(load(client_for(settings), outcome.model_uri), settings.registered_model_name,
                           outcome.version, "champion")
    alone = [r.to_dict() for r in score(champion, EscalationMap.from_yaml(service.routing),
                                        [Message(text=t) for t in texts])]
    for ours, theirs in zip(served, alone, strict=True):  # what a service without a shadow answers
        assert {k: ours[k] for k in ("actionable", "priority_tier", "crisis")} == \
               {k: theirs[k] for k in ("actionable", "priority_tier", "crisis")}
        assert ours["crisis_risk"] == pytest.approx(theirs["crisis_risk"], abs=1e-6)
    disagreed = sum(float(line.split()[-1]) for line in metrics.splitlines()
                    if line.startswith("triage_shadow_disagreements_total{"))
    store = Store(service.env["TRIAGE_DATABASE_URL"])
    with store.session() as session:
        shadowed = session.query(PredictionRow).filter(PredictionRow.model_version == str(shadow_version)).all()
    store.dispose()
    assert len(shadowed) == 30  # recorded under the shadow's version, beside the served ones
    changed = sum(p.result["actionable"] != s["actionable"] or p.result["crisis"] != s["crisis"] or
                  p.result["priority_tier"] != s["priority_tier"]
                  for p, s in zip(sorted(shadowed, key=lambda p: int(p.message_id[3:])), served, strict=True))
    assert disagreed >= changed  # every message it answered differently was counted (per head)
