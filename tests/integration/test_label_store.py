"""The label store on real databases: SQLite (file, WAL) and PostgreSQL, each test on both."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from triage_ml.errors import ConflictError, NotFoundError
from triage_ml.labels.decisions import Decision
from triage_ml.labels.disputes import DisputePolicy
from triage_ml.labels.export import table_hash, training_table
from triage_ml.labels.feedback import flag_dispute, list_disputes, record_decisions, record_predictions, resolve_dispute
from triage_ml.messages import Message
from triage_ml.store.db import Store
from triage_ml.store.tables import Base, DecisionRow, DisputeRow, LabelRow

pytestmark = pytest.mark.integration
POLICY = DisputePolicy()
RESULT = {"actionable": True, "actionable_prob": 0.97, "priority_tier": 1, "tier_probs": {"1": 0.95, "2": 0.05},
          "crisis_risk": 0.01, "crisis": False}


@pytest.fixture
def store(database_url):
    s = Store(database_url)
    yield s
    s.dispose()


def d(event, message="m1", agent="ana", **kw):
    return Decision(event_id=event, message_id=message, agent=agent, **{"action": "responded", "text": "hi", **kw})


def count(store, table):
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(table))


def test_migrations_create_exactly_the_models(store):
    store.ensure_schema()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_decision_becomes_labels_with_provenance(store):
    [out] = record_decisions(store, [d("e1", action="escalated", team="pr", model_version="3")], POLICY)
    assert out["labels"] == {"actionable": True, "priority_tier": 1, "crisis": True}
    with store.session() as s:
        labels = s.scalars(select(LabelRow).order_by(LabelRow.head)).all()
    assert {(lab.head, lab.value, lab.source, lab.author, lab.decision_id) for lab in labels} == {
        ("actionable", 1, "agent", "ana", out["decision_id"]), ("crisis", 1, "agent", "ana", out["decision_id"]),
        ("priority_tier", 1, "agent", "ana", out["decision_id"])}
    table = training_table(store)
    row = table.iloc[0]
    assert (row.message_id, row.actionable, row.priority_tier, row.crisis) == ("m1", True, 1, True)
    assert row.actionable_source == "agent"


def test_replay_changes_nothing_and_reuse_is_refused(store):
    first = record_decisions(store, [d("e1")], POLICY)
    again = record_decisions(store, [d("e1")], POLICY)
    assert again == first
    assert count(store, DecisionRow) == 1 and count(store, LabelRow) == 1
    with pytest.raises(ConflictError, match="e1"):
        record_decisions(store, [d("e1", action="marked_spam")], POLICY)
    # the same event twice in one batch is one decision
    out = record_decisions(store, [d("e2", message="m2"), d("e2", message="m2")], POLICY)
    assert out[0] == out[1] and count(store, DecisionRow) == 2


def test_unknown_message_without_text_is_refused_and_batch_is_atomic(store):
    bad = Decision(event_id="e2", message_id="never-seen", agent="ana", action="responded")
    with pytest.raises(NotFoundError, match=r"decisions\.1\.message_id.*never-seen"):
        record_decisions(store, [d("e1"), bad], POLICY)
    assert count(store, DecisionRow) == 0 and count(store, LabelRow) == 0


def test_scored_message_needs_no_text_and_prediction_is_recorded_once(store):
    first = record_predictions(store, "triage-ml", "3", [(Message("my parcel is late", "m9", channel="x"), RESULT)])
    again = record_predictions(store, "triage-ml", "3",
        [(Message("my parcel is late", "m9"), {**RESULT, "crisis": True})])
    assert again == first  # same id, same version: the recorded result
    other = record_predictions(store, "triage-ml", "4",
        [(Message("my parcel is late", "m9"), {**RESULT, "crisis": True})])
    assert other["m9"]["crisis"] is True
    record_decisions(store, [Decision(event_id="e1", message_id="m9", agent="ana", action="responded")], POLICY)


def test_each_dispute_rule(store):
    # agent vs agent
    record_decisions(store, [d("e1", message="a")], POLICY)
    [out] = record_decisions(store, [d("e2", message="a", agent="bo", action="marked_spam")], POLICY)
    assert out["disputes"]
    # agent vs a confident prediction
    record_predictions(store, "triage-ml", "3", [(Message("where is my refund??", "b"), RESULT)])
    [out] = record_decisions(store, [d("e3", message="b", action="marked_spam", model_version="3",
                                       text="where is my refund??")], POLICY)
    assert out["disputes"]
    # crisis head sure, agent did not escalate
    record_predictions(store, "triage-ml", "3",
        [(Message("the charger caught fire", "c"), {**RESULT, "crisis_risk": 0.95})])
    [out] = record_decisions(store, [d("e4", message="c", text="the charger caught fire")], POLICY)
    assert out["disputes"]
    # ... and the reverse: escalated to PR while the head is sure it is no crisis
    record_predictions(store, "triage-ml", "3", [(Message("love the new menu", "e"), {**RESULT, "crisis_risk": 0.001})])
    [out] = record_decisions(store, [d("e5", message="e", action="escalated", team="pr", text="love the new menu")],
                             POLICY)
    assert out["disputes"]
    # manual flag
    flagged = flag_dispute(store, "f", "lea", "lead", "sarcasm?", text="great, another delay")
    # agreement opens nothing
    [out] = record_decisions(store, [d("e6", message="g"), d("e7", message="g", agent="bo")], POLICY)[1:]
    assert out["disputes"] == []
    rules = {r["rule"] for v in list_disputes(store, "open", 50, 0) for r in v["reasons"]}
    assert rules == {"agent_vs_agent", "agent_vs_model", "crisis_vs_escalation", "manual"}
    assert flagged["message"]["text"] == "great, another delay"
    assert count(store, DisputeRow) == 5


def test_one_open_dispute_per_message_collects_reasons(store):
    record_decisions(store, [d("e1")], POLICY)
    record_decisions(store, [d("e2", agent="bo", action="marked_spam")], POLICY)
    record_decisions(store, [d("e3", agent="cy", action="blocked")], POLICY)
    [view] = list_disputes(store, "open", 50, 0)
    assert len(view["reasons"]) == 2 and len(view["decisions"]) == 3  # cy disagrees with ana, not bo


def test_lead_resolution_is_gold_and_precedence_holds(store):
    record_decisions(store, [d("e1"), d("e2", agent="bo", action="marked_spam")], POLICY)
    row = training_table(store).iloc[0]  # two agents disagree: actionable unknown until a lead decides
    assert row.actionable is None and (row.crisis, row.crisis_source) == (False, "agent")
    [view] = list_disputes(store, "open", 50, 0)
    resolved = resolve_dispute(store, view["id"], "lea", {"actionable": 1, "priority_tier": 2}, "praise")
    assert resolved["state"] == "resolved" and resolved["resolution"]["labels"]["priority_tier"] == 2
    with pytest.raises(ConflictError):
        resolve_dispute(store, view["id"], "lea", {"actionable": 0}, None)
    with pytest.raises(NotFoundError):
        resolve_dispute(store, 999, "lea", {"actionable": 0}, None)
    row = training_table(store).iloc[0]
    assert (row.actionable, row.priority_tier, row.actionable_source) == (True, 2, "lead")
    # two agreeing agents outrank one; the same agent changing their mind supersedes, never deletes
    record_decisions(store, [d("e3", message="n"), d("e4", message="n", agent="bo"),
                             d("e5", message="n", agent="bo", action="set_priority", priority_tier=1)], POLICY)
    row = training_table(store).set_index("message_id").loc["n"]
    assert (row.actionable, row.actionable_source, row.priority_tier, row.priority_tier_source) == (
        True, "agents", 1, "agent")
    with store.session() as s:
        superseded = s.scalars(select(LabelRow).where(LabelRow.superseded_by.is_not(None))).all()
    assert [(lab.author, lab.head) for lab in superseded] == [("bo", "actionable")]


def test_export_is_deterministic(store):
    record_decisions(store, [d(f"e{i}", message=f"m{i % 7}", agent=f"a{i % 3}",
                               action=["responded", "marked_spam", "escalated"][i % 3], team="lead")
                             for i in range(30)], POLICY)
    a, b = training_table(store), training_table(store)
    assert table_hash(a) == table_hash(b) and len(a) > 0


def test_control_characters_are_stored(store):
    text = "nul\x00 bell\x07 esc\x1b[31m ☃ 🔥"
    [out] = record_decisions(store, [d("e1", message="ctl", text=text)], POLICY)
    record_predictions(store, "triage-ml", "3", [(Message(text, "ctl2"), {**RESULT, "explanation": {"summary": text}})])
    row = training_table(store).iloc[0]
    assert row.text == text.replace("\x00", "\ufffd") and out["labels"]["actionable"] is True
