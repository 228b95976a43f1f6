"""The decision-to-label mapping of docs/taxonomy.md, and the dispute rules, without a database."""

import pytest
from pydantic import ValidationError

from triage_ml.labels.decisions import Decision
from triage_ml.labels.disputes import DisputePolicy, agent_vs_agent, agent_vs_model, crisis_vs_escalation


def decision(**kw):
    return Decision(**{"event_id": "e1", "message_id": "m1", "agent": "ana", **kw})


@pytest.mark.parametrize(("fields", "labels"), [
    ({"action": "responded"}, {"actionable": 1}),
    ({"action": "escalated", "team": "lead"}, {"actionable": 1, "priority_tier": 1}),
    ({"action": "escalated", "team": "expert"}, {"actionable": 1, "priority_tier": 1}),
    ({"action": "escalated", "team": "pr"}, {"actionable": 1, "priority_tier": 1, "crisis": 1}),
    ({"action": "escalated", "team": "Legal"}, {"actionable": 1, "priority_tier": 1, "crisis": 1}),
    ({"action": "escalated", "team": "safety"}, {"actionable": 1, "priority_tier": 1, "crisis": 1}),
    ({"action": "archived", "archive_reason": "no_action_needed", "reason": "praise"},
     {"actionable": 1, "priority_tier": 2}),
    ({"action": "archived", "archive_reason": "no_action_needed"}, {"actionable": 0, "crisis": 0}),
    ({"action": "archived", "archive_reason": "duplicate"}, {"actionable": 0, "crisis": 0}),
    ({"action": "archived", "archive_reason": "handled_elsewhere"}, {}),
    ({"action": "marked_spam"}, {"actionable": 0, "crisis": 0}),
    ({"action": "blocked"}, {"actionable": 0, "crisis": 0}),
    ({"action": "set_priority", "priority_tier": 2}, {"actionable": 1, "priority_tier": 2}),
    ({"action": "set_priority", "priority_tier": 1}, {"actionable": 1, "priority_tier": 1}),
    ({"action": "flag_crisis"}, {"crisis": 1, "actionable": 1, "priority_tier": 1}),
    ({"action": "unflag_crisis"}, {"crisis": 0}),
    # explicit fields override what the action implies
    ({"action": "responded", "priority_tier": 2}, {"actionable": 1, "priority_tier": 2}),
    ({"action": "escalated", "team": "pr", "crisis": False}, {"actionable": 1, "priority_tier": 1, "crisis": 0}),
    ({"action": "marked_spam", "actionable": True}, {"actionable": 1}),
    ({"action": "responded", "reason": "complaint"}, {"actionable": 1, "priority_tier": 1}),
    ({"action": "responded", "reason": "crisis"}, {"actionable": 1, "priority_tier": 1, "crisis": 1}),
])
def test_taxonomy_mapping(fields, labels):
    assert decision(**fields).labels() == labels


@pytest.mark.parametrize(("fields", "field"), [
    ({"action": "escalated"}, "team"),
    ({"action": "archived"}, "archive_reason"),
    ({"action": "set_priority"}, "priority_tier"),
    ({"action": "set_priority", "priority_tier": 3}, "priority_tier"),
    ({"action": "shrugged"}, "action"),
    ({"action": "responded", "crisis": True, "actionable": False}, "crisis"),
    ({"action": "responded", "crisis": True, "priority_tier": 2}, "crisis"),
    ({"action": "marked_spam", "priority_tier": 1}, "priority_tier"),
    ({"action": "responded", "colour": "red"}, "colour"),
    ({"action": "responded", "actionable": "yes"}, "actionable"),
])
def test_invalid_decisions_name_the_field(fields, field):
    with pytest.raises(ValidationError) as err:
        decision(**fields)
    assert field in str(err.value)


def test_event_id_is_required():
    with pytest.raises(ValidationError, match="event_id"):
        Decision(message_id="m1", agent="ana", action="responded")


def test_payload_hash_ignores_key_order_and_defaults():
    a = Decision(event_id="e", message_id="m", agent="a", action="responded")
    b = Decision.model_validate({"action": "responded", "agent": "a", "message_id": "m", "event_id": "e",
                                 "team": None})
    assert a.payload_hash() == b.payload_hash()
    assert a.payload_hash() != decision(action="marked_spam").payload_hash()


POLICY = DisputePolicy(confidence=0.9, crisis_high=0.8, crisis_low=0.02)
PRED = {"actionable_prob": 0.97, "tier_probs": {"1": 0.05, "2": 0.95}, "crisis_risk": 0.01, "model_version": "3"}


def test_agent_vs_agent():
    assert agent_vs_agent("bo", {"actionable": 0}, {"ana": {"actionable": 1}})[0].rule == "agent_vs_agent"
    assert agent_vs_agent("bo", {"actionable": 1}, {"ana": {"actionable": 1}}) == []
    assert agent_vs_agent("ana", {"actionable": 0}, {"ana": {"actionable": 1}}) == []  # changing one's mind
    assert agent_vs_agent("bo", {"crisis": 1}, {"ana": {"actionable": 1}}) == []  # different heads


def test_agent_vs_confident_prediction():
    reasons = agent_vs_model("bo", {"actionable": 0}, PRED, POLICY)
    assert [r.rule for r in reasons] == ["agent_vs_model"] and "p=0.97" in reasons[0].detail
    assert agent_vs_model("bo", {"actionable": 1, "priority_tier": 2}, PRED, POLICY) == []
    assert agent_vs_model("bo", {"priority_tier": 1}, PRED, POLICY)[0].rule == "agent_vs_model"
    unsure = {**PRED, "actionable_prob": 0.6}
    assert agent_vs_model("bo", {"actionable": 0}, unsure, POLICY) == []
    assert agent_vs_model("bo", {"actionable": 0}, None, POLICY) == []


def test_crisis_head_vs_escalation():
    high = {**PRED, "crisis_risk": 0.93}
    assert crisis_vs_escalation("bo", "responded", {"actionable": 1}, high, POLICY)[0].rule == "crisis_vs_escalation"
    assert crisis_vs_escalation("bo", "escalated", {"crisis": 1}, high, POLICY) == []
    assert crisis_vs_escalation("bo", "escalated", {"crisis": 1}, PRED, POLICY)[0].rule == "crisis_vs_escalation"
    assert crisis_vs_escalation("bo", "responded", {"actionable": 1}, PRED, POLICY) == []
