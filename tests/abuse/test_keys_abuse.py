"""Finding 7 of issue 19: agent and lead names were not tied to the key. One agent key sent decisions as "ana"
and then as "bob", and the export counted two agents agreeing. Replayed against the real service: each person
has their own key (created by an admin), and a body naming someone else is refused."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.integration.service_fixtures import KEYS
from triage_ml.settings import Settings
from triage_ml.store.db import Store
from triage_ml.store.keys import hash_key
from triage_ml.store.tables import DecisionRow, LabelRow

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).parent / "triage-ml")
REFRESH = Settings.model_fields["routing_poll_seconds"].default  # how often the service re-reads the keys


@pytest.fixture(scope="module")
def service(start_service):
    return start_service(TRIAGE_MODEL_POLL_SECONDS="0")


@pytest.fixture(scope="module")
def people(service) -> dict[str, str]:
    """Keys for ana (agent) and lena (lead), created by an admin through the API."""
    keys = {}
    with service.client("admin") as c:
        for role, name in (("agent", "ana"), ("lead", "lena")):
            r = c.post("/v1/admin/keys", json={"role": role, "name": name})
            assert r.status_code == 201, r.text
            assert r.headers["cache-control"] == "no-store"
            assert {k: v for k, v in r.json().items() if k not in ("key", "created_at")} == {
                "name": name, "role": role, "revoked_at": None}
            keys[name] = r.json()["key"]
    return keys


def client(service, key: str) -> httpx.Client:
    return httpx.Client(base_url=service.url, headers={"X-API-Key": key}, timeout=60)


def decision(event: str, agent: str | None = None) -> dict:
    body = {"event_id": event, "message_id": f"msg-{event}", "action": "responded",
            "text": "my parcel is a week late and nobody answers"}
    return body if agent is None else {**body, "agent": agent}


def stored(service, events: list[str]) -> dict[str, tuple[str, set[str | None]]]:
    """{event_id: (the decision's agent, its labels' authors)} as the label store holds them."""
    store = Store(service.env["TRIAGE_DATABASE_URL"], auto_migrate=False)
    try:
        with store.session() as s:
            rows = s.scalars(select(DecisionRow).where(DecisionRow.event_id.in_(events))).all()
            return {row.event_id: (row.agent, set(s.scalars(select(LabelRow.author).where(
                LabelRow.decision_id == row.id)).all())) for row in rows}
    finally:
        store.dispose()


def test_keys_are_created_by_an_admin_and_listed_without_secrets(service, people):
    with service.client("admin") as c:
        listed = c.get("/v1/admin/keys")
        assert listed.status_code == 200
        # the module's other tests may have created (and revoked) keys before this one: the active ones
        assert [(k["name"], k["role"], k["revoked_at"]) for k in listed.json()["keys"]
                if k["revoked_at"] is None] == [("ana", "agent", None), ("lena", "lead", None)]
        for key in people.values():
            assert key not in listed.text and hash_key(key) not in listed.text
        again = c.post("/v1/admin/keys", json={"role": "lead", "name": "ana"})
        assert again.status_code == 409 and "'ana' already has an active key" in again.json()["detail"]
        bad = c.post("/v1/admin/keys", json={"role": "boss", "name": "ana smith"})
        assert bad.status_code == 422 and {e["field"] for e in bad.json()["detail"]} == {"role", "name"}
        assert c.delete("/v1/admin/keys/ana%00").status_code == 422
    for key in (KEYS["agent"], KEYS["lead"], people["ana"], people["lena"]):  # only admins
        with client(service, key) as c:
            assert c.get("/v1/admin/keys").status_code == 403
            assert c.post("/v1/admin/keys", json={"role": "admin", "name": "mallory"}).status_code == 403
            assert c.delete("/v1/admin/keys/ana").status_code == 403


def test_an_agent_key_decides_only_as_its_agent(service, people):
    with client(service, people["ana"]) as c:
        r = c.post("/v1/feedback", json={"decisions": [decision("k1", "ana"), decision("k2", "bob")]})
        assert r.status_code == 403 and r.json()["detail"] == "decisions.1.agent: this key belongs to 'ana'"
        r = c.post("/v1/feedback", json={"decisions": [decision("k3", "bob")]})
        assert r.status_code == 403 and r.json()["detail"] == "decisions.0.agent: this key belongs to 'ana'"
        assert stored(service, ["k1", "k2", "k3"]) == {}  # the whole batch was refused

        named = c.post("/v1/feedback", json={"decisions": [decision("k4", "ana")]})
        omitted = c.post("/v1/feedback", json={"decisions": [decision("k5")]})
        assert named.status_code == 200 and omitted.status_code == 200, (named.text, omitted.text)
        replay = c.post("/v1/feedback", json={"decisions": [decision("k5", "ana")]})  # the same event, named
        assert replay.status_code == 200 and replay.json() == omitted.json()
    assert stored(service, ["k4", "k5"]) == {"k4": ("ana", {"ana"}), "k5": ("ana", {"ana"})}

    with service.client("agent") as c:  # a TRIAGE_API_KEYS key is a service account's: it names the agent
        r = c.post("/v1/feedback", json={"decisions": [decision("k6")]})
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "decisions.0.agent", r.text
        assert c.post("/v1/feedback", json={"decisions": [decision("k7", "bob")]}).status_code == 200
    assert stored(service, ["k6", "k7"]) == {"k7": ("bob", {"bob"})}


def test_a_lead_key_flags_and_resolves_only_as_its_lead(service, people):
    with client(service, people["ana"]) as c:  # two messages of its own in the store, decided by ana
        r = c.post("/v1/feedback", json={"decisions": [decision("l1", "ana"), decision("l2", "ana")]})
        assert r.status_code == 200, r.text
    with client(service, people["lena"]) as c:
        flag = {"message_id": "msg-l1", "reason": "looks like a crisis to me"}
        r = c.post("/v1/disputes", json={**flag, "by": "bob"})
        assert r.status_code == 403 and r.json()["detail"] == "by: this key belongs to 'lena'"
        opened = c.post("/v1/disputes", json=flag)
        assert opened.status_code == 201, opened.text
        assert [reason["by"] for reason in opened.json()["reasons"]] == ["lena"]
        dispute = opened.json()["id"]
        r = c.post(f"/v1/disputes/{dispute}/resolve", json={"lead": "boss", "crisis": True})
        assert r.status_code == 403 and r.json()["detail"] == "lead: this key belongs to 'lena'"
        assert c.get(f"/v1/disputes/{dispute}").json()["state"] == "open"
        resolved = c.post(f"/v1/disputes/{dispute}/resolve", json={"crisis": True})
        assert resolved.status_code == 200 and resolved.json()["resolved_by"] == "lena", resolved.text
    with client(service, people["ana"]) as c:
        r = c.post("/v1/disputes", json={"message_id": "msg-l2", "reason": "I was wrong"})
        assert r.status_code == 201 and [reason["by"] for reason in r.json()["reasons"]] == ["ana"]
    with service.client("lead") as c:
        r = c.post(f"/v1/disputes/{r.json()['id']}/resolve", json={"crisis": False})
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "lead", r.text


def test_a_revoked_key_is_refused(service):
    with service.client("admin") as c:
        tom = c.post("/v1/admin/keys", json={"role": "agent", "name": "tom"}).json()["key"]
    with client(service, tom) as c:
        assert c.post("/v1/feedback", json={"decisions": [decision("t1")]}).status_code == 200
    with service.client("admin") as c:
        r = c.delete("/v1/admin/keys/tom")
        assert r.status_code == 200 and r.json()["revoked_at"] is not None
        assert c.delete("/v1/admin/keys/tom").status_code == 404
    with client(service, tom) as c:  # revoked through this service: refused at once
        assert c.post("/v1/feedback", json={"decisions": [decision("t2")]}).status_code == 401

    # created and revoked by the CLI, another process: the service follows within its refresh interval
    created = subprocess.run([CLI, "keys", "create", "--role", "agent", "--name", "uma"], env=service.env,
                             capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    uma = created.stdout.strip()
    assert answer_within(service, uma, 200, REFRESH + 2) <= REFRESH + 2
    revoked = subprocess.run([CLI, "keys", "revoke", "uma"], env=service.env, capture_output=True, text=True,
                             timeout=120)
    assert revoked.returncode == 0, revoked.stderr
    assert answer_within(service, uma, 401, REFRESH + 2) <= REFRESH + 2


def answer_within(service, key: str, status: int, limit: float) -> float:
    """Seconds until ``key``'s GET /v1/alerts answers ``status`` (polled every 0.1 s, at most ``limit`` + 1)."""
    start = time.monotonic()
    with client(service, key) as c:
        while c.get("/v1/alerts").status_code != status and time.monotonic() - start < limit + 1:
            time.sleep(0.1)
    return time.monotonic() - start
