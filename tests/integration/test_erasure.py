"""Erasure on request and retention, on SQLite and PostgreSQL: every copy of a customer's text and handle goes,
labels stay, and the audit trail records it without the handle."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from triage_ml.labels import drafts
from triage_ml.labels.decisions import Decision
from triage_ml.labels.disputes import DisputePolicy
from triage_ml.labels.feedback import record_decisions, record_predictions
from triage_ml.messages import Message
from triage_ml.routing import EscalationMap, RoutingMap
from triage_ml.store import audit
from triage_ml.store.audit import Actor
from triage_ml.store.db import Store
from triage_ml.store.erasure import ERASED, author_key, erase_author, purge_older_than
from triage_ml.store.tables import DecisionRow, DraftRow, LabelRow, MessageRow, PredictionRow

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 20, tzinfo=UTC)
ADMIN = Actor("root", "admin")
ROUTES = EscalationMap(RoutingMap.model_validate({"rules": [{"name": "rest", "action": "respond"}]}))


def result(text: str, author: str | None) -> dict:
    return {"actionable": True, "priority_tier": 1, "crisis": False, "route": {"action": "respond", "rule": "rest"},
            "explanation": {"summary": f"tier 1; terms: {text.split()[0]}", "terms": [text.split()[0]],
                            "similar": [{"text": "a training message"}]},
            "context": {"customer": {"author": author}}}


@pytest.fixture
def store(database_url):
    s = Store(database_url)
    messages = [Message("Maria here, my card 4242 was charged twice", message_id="p1", author="@Maria_G",
                        conversation_id="c1", created_at=NOW - timedelta(days=2)),
                Message("still waiting, Maria", message_id="p2", author="maria_g",
                        created_at=NOW - timedelta(days=200)),
                Message("someone else entirely", message_id="p3", author="@bob", created_at=NOW - timedelta(days=200))]
    record_predictions(s, "triage-ml", "1", [(m, result(m.text, m.author)) for m in messages])
    record_decisions(s, [Decision(event_id="e1", message_id="p1", agent="ana", action="responded",
                                  text=messages[0].text, author="@Maria_G"),
                         Decision(event_id="e2", message_id="p3", agent="ana", action="marked_spam")],
                     DisputePolicy(0.99, 0.999, 0.001))
    drafts.submit(s, ROUTES, event_id="d1", message_id="p1", agent="ana", text="Hi Maria, sorry about the charge",
                  role="agent")
    yield s
    s.dispose()


def dump(store: Store) -> str:
    """Everything the store holds about messages, as text."""
    with store.session() as s:
        rows = [*s.scalars(select(MessageRow)), *s.scalars(select(PredictionRow)), *s.scalars(select(DecisionRow)),
                *s.scalars(select(DraftRow))]
        return json.dumps([{c.name: getattr(r, c.name) for c in r.__table__.columns} for r in rows], default=str)


def test_erasing_an_author_removes_every_copy_of_their_text_and_handle(store):
    assert "Maria" in dump(store)
    counts = erase_author(store, "@MARIA_G", ADMIN)  # any case, with or without the @
    assert counts == {"messages": 2, "predictions": 2, "decisions": 1, "drafts": 1}
    held = dump(store)
    assert "Maria" not in held and "maria" not in held and "4242" not in held
    assert "someone else entirely" in held and "@bob" in held  # nobody else's data is touched
    with store.session() as s:
        p1 = s.get(MessageRow, "p1")
        assert (p1.text, p1.author, p1.conversation_id) == (ERASED, None, "c1")
        labels = s.scalars(select(LabelRow).where(LabelRow.message_id == "p1")).all()
        prediction = s.scalar(select(PredictionRow).where(PredictionRow.message_id == "p1"))
    assert [(lab.head, lab.value) for lab in labels] == [("actionable", 1)]  # the label stays, anonymous
    assert prediction.result["actionable"] is True and prediction.result["context"] is None
    assert prediction.result["explanation"]["similar"] == [{"text": "a training message"}]
    [entry] = audit.page(store, kind="erasure")["entries"]
    assert entry["subject"] == f"author:{author_key('maria_g')}" and entry["actor"] == "root"
    assert "maria" not in json.dumps(entry).lower()
    nothing = {"messages": 0, "predictions": 0, "decisions": 0, "drafts": 0}
    assert erase_author(store, "maria_g", ADMIN) == nothing  # erased already: the handle is gone
    assert erase_author(store, "@nobody", ADMIN) == nothing


def test_retention_erases_only_what_is_older_than_the_period(store):
    counts = purge_older_than(store, 90, Actor(None, "service"), now=NOW)
    assert counts == {"messages": 2, "predictions": 2, "decisions": 1, "drafts": 0}  # p2 and p3 (200 days old)
    with store.session() as s:
        texts = {m.id: (m.text, m.author) for m in s.scalars(select(MessageRow))}
    assert texts["p1"][0].startswith("Maria here") and texts["p2"] == (ERASED, None) and texts["p3"] == (ERASED, None)
    assert purge_older_than(store, 90, Actor(None, "service"), now=NOW)["messages"] == 0  # nothing more to do
    [entry] = audit.page(store, kind="erasure")["entries"]
    assert entry["detail"]["reason"] == "retention" and entry["detail"]["messages"] == 2
