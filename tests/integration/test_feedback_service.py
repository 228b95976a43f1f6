"""Feedback and disputes through the real server (uvicorn on loopback), ending in `triage-ml labels export`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.service_fixtures import RunningService

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(trained_store, tmp_path_factory):
    settings, _ = trained_store
    running = RunningService(settings, tmp_path_factory.mktemp("feedback"), TRIAGE_MODEL_POLL_SECONDS="0",
                             TRIAGE_MAX_BODY_BYTES="1000000", TRIAGE_MAX_DECISIONS="50").start()
    yield running
    running.stop()


def feedback(service, *decisions, role="agent"):
    with service.client(role) as c:
        return c.post("/v1/feedback", json={"decisions": list(decisions)})


def test_decision_on_a_scored_message_shows_up_in_the_export(service, tmp_path):
    with service.client("scorer") as c:
        scored = c.post("/v1/score", json={"messages": [{"text": "the charger caught fire in my kid's room",
                                                         "message_id": "svc-1", "channel": "twitter"}]})
    assert scored.status_code == 200
    version = scored.json()["model"]["version"]
    # the same id scored again by the same version gives the recorded result
    with service.client("scorer") as c:
        again = c.post("/v1/score", json={"messages": [{"text": "the charger caught fire in my kid's room",
                                                        "message_id": "svc-1"}]})
    assert again.json()["results"] == scored.json()["results"]

    event = {"event_id": "svc-evt-1", "message_id": "svc-1", "agent": "ana", "action": "escalated", "team": "safety",
             "model_version": version}
    r = feedback(service, event)
    assert r.status_code == 200, r.text
    [result] = r.json()["results"]
    assert result["labels"] == {"actionable": True, "priority_tier": 1, "crisis": True}
    assert feedback(service, event).json() == r.json()  # a replay answers the same

    out = tmp_path / "labels.csv"
    cli = Path(sys.executable).parent / "triage-ml"
    run = subprocess.run([str(cli), "labels", "export", "--out", str(out)], env=service.env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("message_id")
    row = table.loc["svc-1"]
    assert (row.actionable, row.priority_tier, row.crisis) == ("True", "1", "True")
    assert (row.actionable_source, row.crisis_source) == ("agent", "agent")
    assert row.text == "the charger caught fire in my kid's room" and row.channel == "twitter"


def test_disputes_open_and_a_lead_resolves_them(service):
    new = {"message_id": "svc-2", "text": "is this even a real account lol"}
    assert feedback(service, {"event_id": "svc-evt-2", "agent": "ana", "action": "responded", **new}).status_code == 200
    r = feedback(service, {"event_id": "svc-evt-3", "agent": "bo", "action": "marked_spam", **new})
    [dispute_id] = r.json()["results"][0]["disputes"]
    with service.client("lead") as c:
        listed = c.get("/v1/disputes", params={"state": "open"}).json()["disputes"]
        mine = next(d for d in listed if d["id"] == dispute_id)
        assert mine["message"]["text"] == new["text"] and len(mine["decisions"]) == 2
        assert mine["reasons"][0]["rule"] == "agent_vs_agent"
        done = c.post(f"/v1/disputes/{dispute_id}/resolve", json={"lead": "lea", "actionable": False, "note": "troll"})
        assert done.status_code == 200 and done.json()["state"] == "resolved"
        assert c.post(f"/v1/disputes/{dispute_id}/resolve", json={"lead": "lea", "actionable": True}).status_code == 409
        assert c.get("/v1/disputes/999999").status_code == 404
    with service.client("agent") as c:
        flagged = c.post("/v1/disputes", json={"message_id": "svc-2", "by": "ana", "reason": "looks like a parody"})
    assert flagged.status_code == 201 and flagged.json()["reasons"][0]["rule"] == "manual"


@pytest.mark.parametrize(("body", "status", "needle"), [
    ({"decisions": [{"event_id": "x1", "message_id": "svc-1", "agent": "a", "action": "shrugged"}]}, 422, "action"),
    ({"decisions": [{"event_id": "x2", "message_id": "svc-1", "agent": "a", "action": "set_priority",
                     "priority_tier": 3}]}, 422, "priority_tier"),
    ({"decisions": [{"message_id": "svc-1", "agent": "a", "action": "responded"}]}, 422, "event_id"),
    ({"decisions": [{"event_id": "x3", "message_id": "nowhere", "agent": "a", "action": "responded"}]}, 404,
     "include the message's text"),
    ({"decisions": [{"event_id": "bad-evt-1", "message_id": "bad-1", "agent": "ana", "action": "blocked"}]}, 409,
     "already used"),
    ({"decisions": [{"event_id": f"x{i}", "message_id": "svc-1", "agent": "a", "action": "responded"}
                    for i in range(51)]}, 413, "limit is 50"),
    ({"decisions": []}, 422, "decisions"),
])
def test_bad_feedback_gets_a_clear_4xx(service, body, status, needle):
    # event bad-evt-1 on message bad-1, stored here (a replay of it answers as the first time did), so that
    # the 409 case does not depend on another test having run first
    first = feedback(service, {"event_id": "bad-evt-1", "message_id": "bad-1", "agent": "ana", "action": "escalated",
                               "team": "safety", "text": "the charger caught fire in my kid's room"})
    assert first.status_code == 200, first.text
    with service.client("agent") as c:
        r = c.post("/v1/feedback", json=body)
    assert r.status_code == status, r.text
    assert needle in r.text


def test_roles_and_big_bodies(service):
    decision = {"event_id": "r1", "message_id": "svc-1", "agent": "a", "action": "responded"}
    assert feedback(service, decision, role="scorer").status_code == 403
    assert feedback(service, decision, role=None).status_code == 401
    with service.client("agent") as c:
        assert c.get("/v1/disputes").status_code == 403
        big = c.post("/v1/feedback", content=b'{"decisions": [' + b" " * 10_000_000 + b"]}",
                     headers={"content-type": "application/json"})
    assert big.status_code == 413


def test_database_down_means_503_and_not_ready(trained_store, tmp_path):
    settings, _ = trained_store
    port = 1  # nothing listens there: the label store is unreachable
    down = RunningService(settings, tmp_path, TRIAGE_MODEL_POLL_SECONDS="0",
                          TRIAGE_DATABASE_URL=f"postgresql+psycopg://nobody@127.0.0.1:{port}/none?connect_timeout=2")
    try:
        down.start(wait_for="/healthz")
        with down.client(None) as c:
            ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["store_reachable"] is False
        assert ready.json()["model_loaded"] is True
        r = feedback(down, {"event_id": "d1", "message_id": "m", "agent": "a", "action": "responded", "text": "hi"})
        assert r.status_code == 503 and "nothing was written" in r.json()["detail"]
        with down.client("scorer") as c:  # scoring goes on without the store
            assert c.post("/v1/score", json={"messages": [{"text": "hello", "message_id": "m"}]}).status_code == 200
    finally:
        down.stop()
