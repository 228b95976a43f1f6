"""The export's precedence (lead > agreeing agents > one agent > seed/import) and its consistency rule, on a
real SQLite label store written through the project's own functions."""

from __future__ import annotations

import itertools
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from triage_ml.labels.decisions import Decision
from triage_ml.labels.disputes import DisputePolicy
from triage_ml.labels.export import COLUMNS, table_hash, training_table
from triage_ml.labels.feedback import record_decisions, store_lead_labels
from triage_ml.store.db import Store
from triage_ml.store.tables import LabelRow, MessageRow

EVENTS = itertools.count()
SHOWN = ("actionable", "priority_tier", "crisis", "actionable_source", "priority_tier_source", "crisis_source")


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """A migrated, empty SQLite label store, migrated once and copied for each test."""
    path = tmp_path_factory.mktemp("store") / "labels.db"
    Store(f"sqlite:///{path}").ensure_schema()
    return path


@pytest.fixture
def store(tmp_path, empty_store):
    shutil.copy(empty_store, tmp_path / "labels.db")
    s = Store(f"sqlite:///{tmp_path / 'labels.db'}")
    yield s
    s.dispose()


def agent(store: Store, message: str, who: str, action: str = "responded", **kw) -> dict[str, int]:
    """An agent's decision, through record_decisions; returns the label ids it stored, by head."""
    [out] = record_decisions(store, [Decision(event_id=f"e{next(EVENTS)}", message_id=message, agent=who,
                                              action=action, text=f"text of {message}", **kw)], DisputePolicy())
    return ids(store, decision_id=out["decision_id"])


def lead(store: Store, message: str, **labels: int) -> dict[str, int]:
    """A lead's gold labels, through store_lead_labels (what a dispute resolution or a review pull runs)."""
    store.write(lambda s: store_lead_labels(s, message, "lea", labels, dispute_id=None, now=datetime.now(UTC)))
    return ids(store, source="lead", message=message)


def base(store: Store, message: str, source: str, **labels: int) -> dict[str, int]:
    """Seed, import or model labels. No writer in the library stores these, so they are added as rows."""
    def tx(session):
        if session.get(MessageRow, message) is None:
            session.add(MessageRow(id=message, text=f"text of {message}"))
            session.flush()
        session.add_all(LabelRow(message_id=message, head=h, value=v, source=source) for h, v in labels.items())

    store.write(tx)
    return ids(store, source=source, message=message)


def ids(store: Store, *, decision_id: int | None = None, source: str | None = None,
        message: str | None = None) -> dict[str, int]:
    query = select(LabelRow).where(LabelRow.superseded_by.is_(None)).order_by(LabelRow.id)
    if decision_id is not None:
        query = query.where(LabelRow.decision_id == decision_id)
    if source is not None:
        query = query.where(LabelRow.source == source, LabelRow.message_id == message)
    with store.session() as session:
        return {lab.head: lab.id for lab in session.scalars(query)}


def rows(store: Store) -> dict[str, dict]:
    """message_id -> the labels, their sources and the label ids used (NaN shown as None)."""
    table = training_table(store)
    assert list(table.columns) == list(COLUMNS)
    return {r["message_id"]: {**{k: None if pd.isna(r[k]) else r[k] for k in SHOWN},
                              "label_ids": json.loads(r["label_ids"])} for r in table.to_dict("records")}


def labels(actionable=None, tier=None, crisis=None, sources=(None, None, None), label_ids=()):
    return {"actionable": actionable, "priority_tier": tier, "crisis": crisis,
            **dict(zip(SHOWN[3:], sources, strict=True)), "label_ids": sorted(label_ids)}


# -- each rung -------------------------------------------------------------------------------------------------
def test_a_single_agent(store):
    a = agent(store, "m", "ana")
    assert rows(store) == {"m": labels(True, sources=("agent", None, None), label_ids=[a["actionable"]])}


def test_two_agreeing_agents_outrank_one_and_list_both(store):
    a, b = agent(store, "m", "ana"), agent(store, "m", "bo")
    assert rows(store)["m"] == labels(True, sources=("agents", None, None), label_ids=[a["actionable"],
                                                                                      b["actionable"]])


def test_agents_who_disagree_leave_the_head_unknown(store):
    agent(store, "m", "ana")
    spam = agent(store, "m", "bo", "marked_spam")  # actionable 0 (against ana's 1) and crisis 0 (bo alone)
    assert rows(store)["m"] == labels(None, None, False, sources=(None, None, "agent"), label_ids=[spam["crisis"]])


def test_one_disagreeing_agent_among_agreeing_ones_still_disputes(store):
    agent(store, "m", "ana"), agent(store, "m", "bo")
    agent(store, "m", "cy", "marked_spam")
    assert rows(store)["m"]["actionable"] is None


def test_an_agent_who_changes_their_mind_counts_once_with_the_latest(store):
    agent(store, "m", "ana")
    spam = agent(store, "m", "ana", "marked_spam")
    assert rows(store)["m"] == labels(False, "none", False, sources=("agent", None, "agent"),
                                      label_ids=[spam["actionable"], spam["crisis"]])


def test_a_lead_outranks_agreeing_agents(store):
    agent(store, "m", "ana"), agent(store, "m", "bo")
    gold = lead(store, "m", actionable=0)
    assert rows(store)["m"] == labels(False, "none", None, sources=("lead", None, None),
                                      label_ids=[gold["actionable"]])


def test_a_lead_settles_a_dispute_and_undisputed_heads_keep_their_source(store):
    agent(store, "m", "ana")
    spam = agent(store, "m", "bo", "marked_spam")
    gold = lead(store, "m", actionable=1, priority_tier=2)
    assert rows(store)["m"] == labels(True, 2, False, sources=("lead", "lead", "agent"),
                                      label_ids=[gold["actionable"], gold["priority_tier"], spam["crisis"]])


def test_a_leads_later_answer_supersedes_their_earlier_one(store):
    agent(store, "m", "ana")
    lead(store, "m", actionable=0)
    gold = lead(store, "m", actionable=1)
    assert rows(store)["m"] == labels(True, sources=("lead", None, None), label_ids=[gold["actionable"]])


def test_an_agent_outranks_seed_data(store):
    base(store, "m", "seed", actionable=0, crisis=0)
    a = agent(store, "m", "ana")
    seed = ids(store, source="seed", message="m")
    assert rows(store)["m"] == labels(True, None, False, sources=("agent", None, "seed"),
                                      label_ids=[a["actionable"], seed["crisis"]])


@pytest.mark.parametrize("source", ["seed", "import"])
def test_seed_or_import_data_alone(store, source):
    got = base(store, "m", source, actionable=1, priority_tier=2, crisis=0)
    assert rows(store)["m"] == labels(True, 2, False, sources=(source,) * 3, label_ids=got.values())


def test_the_latest_of_seed_and_import_labels_is_used_with_its_source(store):
    base(store, "m", "seed", actionable=0)
    imported = base(store, "m", "import", actionable=1)
    assert rows(store)["m"] == labels(True, sources=("import", None, None), label_ids=[imported["actionable"]])


def test_model_labels_are_never_exported(store):
    base(store, "only-model", "model", actionable=1, priority_tier=1, crisis=1)
    base(store, "both", "model", actionable=1)
    seed = base(store, "both", "seed", actionable=0)
    assert rows(store) == {"both": labels(False, "none", sources=("seed", None, None),
                                          label_ids=[seed["actionable"]])}


def test_rows_are_sorted_by_message_and_the_hash_is_stable(store):
    for message in ("m3", "m1", "m2"):
        agent(store, message, "ana")
    first = training_table(store)
    assert list(first["message_id"]) == ["m1", "m2", "m3"] and table_hash(first) == table_hash(training_table(store))


# -- the consistency rule: the lower-ranked side of a conflict is dropped -----------------------------------
def test_a_leads_crisis_drops_an_agents_noise(store):
    agent(store, "m", "bo", "marked_spam")  # actionable 0, crisis 0
    gold = lead(store, "m", crisis=1)
    assert rows(store)["m"] == labels(None, None, True, sources=(None, None, "lead"), label_ids=[gold["crisis"]])


def test_a_leads_noise_drops_an_agents_crisis_and_its_tier(store):
    agent(store, "m", "ana", "escalated", team="pr")  # actionable 1, tier 1, crisis 1
    gold = lead(store, "m", actionable=0)
    assert rows(store)["m"] == labels(False, "none", None, sources=("lead", None, None),
                                      label_ids=[gold["actionable"]])


def test_a_leads_tier_2_drops_an_agents_crisis(store):
    a = agent(store, "m", "ana", "escalated", team="pr")
    gold = lead(store, "m", priority_tier=2)
    assert rows(store)["m"] == labels(True, 2, None, sources=("agent", "lead", None),
                                      label_ids=[a["actionable"], gold["priority_tier"]])


def test_a_leads_tier_drops_an_agents_noise(store):
    spam = agent(store, "m", "bo", "marked_spam")
    gold = lead(store, "m", priority_tier=1)
    assert rows(store)["m"] == labels(None, 1, False, sources=(None, "lead", "agent"),
                                      label_ids=[gold["priority_tier"], spam["crisis"]])


def test_agreeing_agents_noise_drops_a_seed_tier(store):
    seed = base(store, "m", "seed", priority_tier=1)
    agent(store, "m", "ana", "marked_spam"), agent(store, "m", "bo", "marked_spam")
    row = rows(store)["m"]
    assert (row["actionable"], row["priority_tier"], row["priority_tier_source"]) == (False, "none", None)
    assert seed["priority_tier"] not in row["label_ids"] and len(row["label_ids"]) == 4


def test_a_conflict_of_equal_rank_drops_both_sides(store):
    base(store, "gone", "seed", crisis=1, actionable=0)  # nothing left: the message is not exported
    kept = base(store, "kept", "seed", actionable=1, priority_tier=2, crisis=1)
    assert rows(store) == {"kept": labels(True, sources=("seed", None, None), label_ids=[kept["actionable"]])}
