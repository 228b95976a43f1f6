"""Context from the label store (context.py), on SQLite and PostgreSQL: a replayed history with its own
timestamps, and each field checked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from triage_ml.context import lookup
from triage_ml.labels.decisions import Decision
from triage_ml.labels.disputes import DisputePolicy
from triage_ml.labels.feedback import record_decisions, record_predictions
from triage_ml.messages import Message
from triage_ml.routing import EscalationMap, RoutingMap
from triage_ml.store.db import Store

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
POLICY = DisputePolicy(0.99, 0.999, 0.001)


SENTIMENT = {"h1": "negative", "h2": "neutral", "h3": "negative", "h4": "positive", "h5": "positive"}


def predicted(tier: int | None, crisis: bool = False, sentiment: str | None = None) -> dict:
    return {"actionable": tier is not None, "priority_tier": tier, "crisis": crisis,
            "route": {"action": "respond", "team": None, "rule": "rest"},
            "sentiment": None if sentiment is None else {"label": sentiment, "probs": {sentiment: 0.9}}}


@pytest.fixture
def store(database_url):
    s = Store(database_url)
    history = [  # (id, author, conversation, hours before NOW, predicted tier, crisis)
        ("h1", "@dana", "c1", 2, 1, False),     # open: escalated, never answered
        ("h2", "@dana", "c1", 1.5, None, False),  # noise in the same thread
        ("h3", "@dana", "c0", 24 * 20, 1, True),  # a crisis 20 days ago, answered
        ("h4", "@dana", "c9", 24 * 60, 2, False),  # tier 2, 60 days ago
        ("h5", "@dana", "c8", 24 * 120, 1, False),  # outside 90 days
        ("h6", "@eve", "c2", 30, 1, False),      # eve: answered, 30 h ago (outside the 24 h repeat window)
    ]
    record_predictions(s, "triage-ml", "1", [
        (Message(f"text of {i}", message_id=i, author=a, conversation_id=c, created_at=NOW - timedelta(hours=h)),
         predicted(t, x, SENTIMENT.get(i))) for i, a, c, h, t, x in history])

    def decide(event: str, message: str, agent: str, hours: float, **action) -> Decision:
        return Decision(event_id=event, message_id=message, agent=agent, decided_at=NOW - timedelta(hours=hours),
                        **{"action": "responded", **action})

    record_decisions(s, [decide("d1", "h1", "ana", 1.8, action="escalated", team="lead"),
                         decide("d3", "h3", "bo", 24 * 20 - 1), decide("d6", "h6", "ana", 29)], POLICY)
    yield s
    s.dispose()


def test_conversation_and_customer_from_the_store(store):
    new = Message("still nothing??", message_id="n1", author="@dana", conversation_id="c1", created_at=NOW)
    [ctx] = lookup(store, [new])
    conversation, customer = ctx.conversation, ctx.customer
    assert conversation.turns_seen == 2 and conversation.open_case  # h1 is actionable and only escalated
    assert conversation.last_decision == {"action": "escalated", "agent": "ana",
                                          "at": (NOW - timedelta(hours=1.8)).isoformat()}
    assert conversation.minutes_since_brand_reply is None  # nobody has answered in this conversation
    assert (customer.messages_30d, customer.messages_90d) == (3, 4)  # h1, h2, h3; + h4 (h5 is too old)
    assert (customer.tier1_30d, customer.tier1_90d, customer.crises_30d, customer.crises_90d) == (2, 2, 1, 1)
    assert (customer.last_agent, customer.last_outcome) == ("ana", "escalated")
    assert customer.repeat_contact  # h1 was actionable, 2 h ago
    # the last 90 days' messages, oldest first: h4 (60 days), h3 (20 days), h1 (2 h), h2 (1.5 h); h5 is too old
    assert customer.sentiment_trend == ["positive", "negative", "negative", "neutral"]
    assert ctx.facts() == {"open_case": True, "repeat_contact": True, "conversation_turns": 2,
                           "customer_messages_30d": 3, "customer_tier1_30d": 2, "customer_tier1_90d": 2,
                           "customer_crises_90d": 1}


def test_an_answered_case_is_closed_and_time_runs_from_the_brands_reply(store):
    eve = Message("thanks!", author="@eve", conversation_id="c2", created_at=NOW)
    [ctx] = lookup(store, [eve])
    assert not ctx.conversation.open_case and ctx.conversation.minutes_since_brand_reply == 29 * 60
    assert not ctx.customer.repeat_contact  # her last message is 30 h old
    assert ctx.customer.sentiment_trend == []  # scored by a model without a sentiment head
    # the past as it was: an hour after h6 was posted, before ana answered, the case was open
    [then] = lookup(store, [Message("hello?", author="@eve", conversation_id="c2",
                                    created_at=NOW - timedelta(hours=29.5))])
    assert then.conversation.open_case and then.customer.repeat_contact


def test_a_lead_label_outranks_the_prediction_and_strangers_have_empty_context(store):
    from triage_ml.labels.feedback import store_lead_labels

    with store.sessions() as s, s.begin():  # a lead says h1 was noise: the case is not open any more
        store_lead_labels(s, "h1", "lena", {"actionable": 0}, dispute_id=None, now=NOW)
    [ctx, stranger, bare] = lookup(store, [
        Message("still nothing??", author="@dana", conversation_id="c1", created_at=NOW),
        Message("hi", author="@nobody", conversation_id="c-new", created_at=NOW), Message("hi")])
    assert not ctx.conversation.open_case and not ctx.customer.repeat_contact
    assert ctx.customer.tier1_30d == 1  # only the crisis h3 now
    assert stranger.conversation.turns_seen == 0 and stranger.customer.messages_90d == 0
    assert stranger.customer.last_agent is None and not stranger.facts()["open_case"]
    assert bare.conversation is None and bare.customer is None


def test_the_map_routes_on_context_and_says_why(store):
    routes = EscalationMap(RoutingMap.model_validate({"rules": [
        {"name": "crisis before", "when": {"customer_crises_90d": ">=1", "actionable": True}, "action": "escalate",
         "team": "lead"},
        {"name": "repeat", "when": {"repeat_contact": True}, "action": "respond", "team": "senior"},
        {"name": "rest", "action": "respond", "team": "care"}]}))
    [ctx] = lookup(store, [Message("still nothing??", author="@dana", conversation_id="c1", created_at=NOW)])
    decided = {"actionable": True, "priority_tier": 1, "crisis": False, "topics": []}
    route = routes.route(**decided, context=ctx.facts())
    assert (route.rule, route.team) == ("crisis before", "lead")
    assert route.because == ("crises from this customer in 90 days: 1",)
    quiet = routes.route(**{**decided, "actionable": False}, context=ctx.facts())
    assert quiet.rule == "repeat" and quiet.because == ("repeat contact within 24 h",)
    assert routes.route(**decided).rule == "rest"  # scored without context (no store): no context rule fires


def test_a_context_rule_that_does_not_fire_leaves_the_rules_after_it_as_they_were():
    """A context rule first, then the ordinary ones: a message it does not catch is routed by them (a bug once
    let the rule after it match everything)."""
    routes = EscalationMap(RoutingMap.model_validate({"rules": [
        {"name": "repeat", "when": {"repeat_contact": True, "crisis": False}, "action": "respond", "team": "senior"},
        {"name": "crisis", "when": {"crisis": True}, "action": "escalate", "team": "pr"},
        {"name": "tier 2", "when": {"actionable": True, "priority_tier": 2}, "action": "acknowledge"},
        {"name": "rest", "action": "ignore"}]}))
    praise = {"actionable": True, "priority_tier": 2, "crisis": False, "topics": []}
    for context in (None, {"repeat_contact": False}, {"customer_crises_90d": 3}):
        assert routes.route(**praise, context=context).rule == "tier 2"
    assert routes.route(**praise, context={"repeat_contact": True}).rule == "repeat"
    crisis = {**praise, "crisis": True, "priority_tier": 1}
    assert routes.route(**crisis, context={"repeat_contact": True}).rule == "crisis"


@pytest.mark.parametrize("bad", [">= one", "=>1", "-1", "1.5"])
def test_a_context_condition_that_is_not_a_comparison_is_refused(bad):
    from triage_ml.errors import ConfigError

    with pytest.raises(ConfigError, match=r"'rules.0.when.customer_crises_90d': .* is not a comparison; write e.g."):
        EscalationMap.from_text(f"rules: [{{name: r, when: {{customer_crises_90d: '{bad}'}}, action: ignore}}, "
                                "{name: rest, action: ignore}]", "map")


def test_a_lookup_on_sqlite_never_holds_the_write_lock(tmp_path):
    """Scoring looks context up while agents' decisions are written: on SQLite a lookup's transaction is
    deferred, so a writer takes the write lock at once instead of queueing behind it."""
    import sqlite3

    from sqlalchemy import text

    path = tmp_path / "triage.db"
    store = Store(f"sqlite:///{path.as_posix()}")
    try:
        with store.reading() as conn:
            assert conn.execute(text("SELECT count(*) FROM messages")).scalar() == 0
            writer = sqlite3.connect(path, timeout=0.1)
            writer.execute("BEGIN IMMEDIATE")  # raises "database is locked" if the lookup held the lock
            writer.rollback()
            writer.close()
        with store.session() as session:  # an ordinary session still takes it (writes queue, never fail)
            session.execute(text("SELECT 1"))
            blocked = sqlite3.connect(path, timeout=0.1)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                blocked.execute("BEGIN IMMEDIATE")
            blocked.close()
    finally:
        store.dispose()
