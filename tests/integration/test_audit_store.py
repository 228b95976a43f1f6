"""The audit trail in the label store, on SQLite and PostgreSQL: append-only, written with the write it records."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DatabaseError

from triage_ml.errors import ConflictError
from triage_ml.labels.decisions import Decision
from triage_ml.labels.disputes import DisputePolicy
from triage_ml.labels.feedback import record_decisions
from triage_ml.store import audit
from triage_ml.store.audit import Actor
from triage_ml.store.db import Store
from triage_ml.store.routing_history import history, record_version
from triage_ml.store.tables import AuditRow

pytestmark = pytest.mark.integration
POLICY = DisputePolicy(0.9, 0.8, 0.2)


@pytest.fixture
def store(database_url):
    s = Store(database_url)
    yield s
    s.dispose()


def decide(event_id: str, message_id: str, **fields) -> Decision:
    return Decision(event_id=event_id, message_id=message_id, agent=fields.pop("agent", "ana"),
                    action=fields.pop("action", "responded"), text=fields.pop("text", "where is my parcel?"),
                    **fields)


def test_the_database_refuses_to_change_or_delete_an_audit_entry(store):
    record_decisions(store, [decide("a-1", "m-1")], POLICY)
    with store.session() as s:
        [entry] = s.query(AuditRow).all()
    for statement in (update(AuditRow).values(actor="someone else"), delete(AuditRow),
                      text("UPDATE audit SET kind = 'decision' WHERE id = :id").bindparams(id=entry.id)):
        with pytest.raises(DatabaseError, match="append-only"), store.sessions() as s, s.begin():
            s.execute(statement)
    with store.session() as s:
        assert [(e.id, e.actor, e.kind) for e in s.query(AuditRow).all()] == [(entry.id, "ana", "decision")]


def test_an_entry_exists_exactly_when_its_write_does(store):
    record_decisions(store, [decide("a-1", "m-1"), decide("a-2", "m-2")], POLICY, role="agent")
    record_decisions(store, [decide("a-1", "m-1")], POLICY)  # a replay: no write, no entry
    with pytest.raises(ConflictError):  # the batch is refused whole: no decision, no entry
        record_decisions(store, [decide("a-3", "m-3"), decide("a-1", "m-1", action="marked_spam")], POLICY)
    trail = audit.page(store)
    assert [(e["kind"], e["subject"], e["detail"]["event_id"]) for e in trail["entries"]] == [
        ("decision", "message:m-1", "a-1"), ("decision", "message:m-2", "a-2")]
    assert trail["total"] == 2 and trail["next_offset"] is None


def test_the_map_history_records_a_version_once_and_diffs_it(store):
    service, lena = Actor(None, "service"), Actor("lena", "lead")
    assert record_version(store, "rules: [{name: all, action: ignore}]\n", "file", service)
    assert not record_version(store, "rules: [{name: all, action: ignore}]\n", "file", service)  # a second worker
    assert record_version(store, "rules: [{name: all, action: respond}]\n", "api", lena, "answer everything")
    assert record_version(store, "rules: [{name: all, action: ignore}]\n", "file", service)  # back again: listed
    versions = history(store)["versions"]
    assert [(v["source"], v["actor"], v["note"]) for v in versions] == [
        ("file", None, None), ("api", "lena", "answer everything"), ("file", None, None)]
    assert versions[0]["version"] == versions[2]["version"] and versions[1]["previous"] == versions[2]["version"]
    assert "-rules: [{name: all, action: ignore}]\n+rules: [{name: all, action: respond}]" in versions[1]["diff"]
    assert [e["actor"] for e in audit.page(store, kind="map.changed")["entries"]] == [None, "lena", None]

    def disk_full() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError):  # the map file could not be replaced: nothing is recorded
        record_version(store, "rules: [{name: all, action: monitor}]\n", "api", lena, before_commit=disk_full)
    assert history(store)["total"] == 3 and audit.page(store, kind="map")["total"] == 3
