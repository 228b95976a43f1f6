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

from tests.conftest import XCI
from tests.integration.service_fixtures import RunningService, alerts, wait_for
from triage_ml.taxonomy import HEADS

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


def test_drift_report_tells_familiar_traffic_from_a_new_kind(own_store, seed, tmp_path):
    settings, _ = own_store  # the report logs its runs to the store
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


def answers(result) -> dict:
    """A result's answer per head (what the shadow's disagreements are counted on): an API result (a dict) or a
    ScoredMessage."""
    shown = result if isinstance(result, dict) else result.to_dict()
    return {h: shown[h] for h in HEADS}


def test_shadow_mode_scores_aside_and_never_changes_the_answer(own_store, frozen_store, seed, tmp_path):
    from mlflow import MlflowClient

    from triage_ml.messages import Message
    from triage_ml.pipeline.tracking import configure_mlflow
    from triage_ml.registry import load
    from triage_ml.routing import EscalationMap
    from triage_ml.scoring import LoadedModel, score
    from triage_ml.store.db import Store
    from triage_ml.store.tables import PredictionRow

    settings, outcome = own_store  # champion v1: the fine-tuned model
    name = settings.registered_model_name
    # the shadow: the frozen-encoder model, registered in this store from the artifacts the shared frozen store
    # keeps (no training of its own)
    frozen_settings, frozen = frozen_store
    frozen_uri = frozen_settings.resolved_tracking_uri()
    source = MlflowClient(frozen_uri, registry_uri=frozen_uri).get_model_version_download_uri(name, frozen.version)
    client: MlflowClient = configure_mlflow(settings)
    shadow_version = str(client.create_model_version(name, source).version)
    client.set_registered_model_alias(name, "shadow-candidate", shadow_version)

    # messages on which the two models must disagree, and messages on which they agree: in-process answers
    routes = EscalationMap.from_yaml(Path("serving/routing.yaml"))
    champion, shadow = (LoadedModel(load(client, f"models:/{name}/{v}", backend=settings.encoder_backend), name,
                                    v, alias) for v, alias in ((outcome.version, "champion"),
                                                               (shadow_version, "shadow-candidate")))

    def differ(texts: list[str]) -> list[int]:
        """Where the two models answer differently, in-process."""
        ours, theirs = (score(m, routes, [Message(text=t) for t in texts]) for m in (champion, shadow))
        return [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if answers(a) != answers(b)]

    pool = seed["text"].iloc[::11].tolist()
    apart = differ(pool)[:10]
    assert apart, "the frozen model agrees with the fine-tuned one on every message: pick another pool"
    texts = [pool[i] for i in sorted(apart + [i for i in range(len(pool)) if i not in apart][:30 - len(apart)])]

    service = RunningService(settings, tmp_path, TRIAGE_MODEL_POLL_SECONDS="0",
                             TRIAGE_SHADOW_ALIAS="shadow-candidate", TRIAGE_SPIKE_ALERTS="false").start()
    try:
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

    alone = [r.to_dict() for r in score(champion, routes, [Message(text=t) for t in texts])]
    for ours, theirs in zip(served, alone, strict=True):  # what a service without a shadow answers
        assert answers(ours) == answers(theirs)
        assert ours["crisis_risk"] == pytest.approx(theirs["crisis_risk"], abs=1e-6)
    store = Store(service.env["TRIAGE_DATABASE_URL"])
    with store.session() as session:
        shadowed = session.query(PredictionRow).filter(PredictionRow.model_version == shadow_version).all()
    store.dispose()
    assert len(shadowed) == 30  # recorded under the shadow's version, beside the served ones
    shadowed = sorted(shadowed, key=lambda p: int(p.message_id[3:]))
    assert [answers(p.result) for p in shadowed] == [answers(r) for r in score(shadow, routes, [
        Message(text=t) for t in texts])]  # what the shadow model answers
    otherwise = [i for i, (p, s) in enumerate(zip(shadowed, served, strict=True)) if answers(p.result) != answers(s)]
    assert otherwise and otherwise == differ(texts)  # a real disagreement, on the messages the models differ on
    # every message it answered differently was counted, once per head that differs, and nothing else
    changed = {h: sum(p.result[h] != s[h] for p, s in zip(shadowed, served, strict=True)) for h in HEADS}
    counted = {line.split('"')[1]: float(line.split()[-1]) for line in metrics.splitlines()
               if line.startswith("triage_shadow_disagreements_total{")}
    assert counted == {h: float(n) for h, n in changed.items() if n}, (counted, changed)
