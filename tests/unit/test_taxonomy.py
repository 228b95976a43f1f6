"""The taxonomy's rules, written once in triage_ml.taxonomy and used by files, decisions, leads' answers,
exports and predictions alike."""

from __future__ import annotations

import pytest

from triage_ml.taxonomy import (
    CONFLICTS,
    close_labels,
    close_prediction,
    explicit_labels,
    parse_yes_no,
    reason_labels,
)


@pytest.mark.parametrize(("value", "expected"), [
    ("yes", True), ("Y", True), (" TRUE ", True), ("1", True), ("1.0", True), ("t", True), (True, True),
    ("no", False), ("N", False), ("false", False), ("0", False), ("0.0", False), ("f", False), (False, False),
    ("", None), ("unknown", None), ("NaN", None), ("<NA>", None), (None, None),
])
def test_yes_no_spellings(value, expected):
    assert parse_yes_no(value) is expected


def test_an_unknown_spelling_is_refused_with_the_accepted_ones():
    with pytest.raises(ValueError, match="'maybe' is not a yes/no value; use true, false or leave it blank"):
        parse_yes_no("maybe")


@pytest.mark.parametrize(("implied", "explicit", "closed"), [
    ({"crisis": 1}, {}, {"crisis": 1, "actionable": 1, "priority_tier": 1}),
    ({"actionable": 0}, {"crisis": 1}, {"crisis": 1, "actionable": 1, "priority_tier": 1}),
    ({"actionable": 1, "priority_tier": 2}, {"actionable": 0}, {"actionable": 0, "crisis": 0}),
    ({}, {"priority_tier": 2}, {"priority_tier": 2, "actionable": 1}),
    ({"actionable": 1}, {}, {"actionable": 1}),
])
def test_closing_a_label_set(implied, explicit, closed):
    assert close_labels(implied, explicit) == closed


@pytest.mark.parametrize(("implied", "explicit", "message"), [
    ({}, {"crisis": 1, "actionable": 0}, "crisis: true contradicts actionable: false; a crisis is always actionable"),
    ({"crisis": 1}, {"priority_tier": 2}, "crisis: true contradicts priority_tier: 2; a crisis is always tier 1"),
    ({}, {"actionable": 0, "priority_tier": 1}, "priority_tier: noise (actionable: false) has no tier"),
])
def test_contradictions_name_the_field(implied, explicit, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        close_labels(implied, explicit)


@pytest.mark.parametrize(("answer", "closed"), [
    ((False, 2, True), (True, 1)), ((True, 2, True), (True, 1)), ((True, 2, False), (True, 2)),
    ((False, 1, False), (False, None)), ((True, None, False), (True, None)),
])
def test_closing_a_prediction(answer, closed):
    assert close_prediction(*answer) == closed


def test_conflicts_hold_only_on_known_values():
    crisis_actionable, crisis_tier, noise_tier = CONFLICTS
    assert crisis_actionable.holds({"crisis": 1, "actionable": 0})
    assert not crisis_actionable.holds({"crisis": 1})
    assert not crisis_actionable.holds({"crisis": 0, "actionable": 0})
    assert crisis_tier.holds({"crisis": 1, "priority_tier": 2})
    assert not crisis_tier.holds({"crisis": 1, "priority_tier": 1})
    assert noise_tier.holds({"priority_tier": 1, "actionable": 0})
    assert noise_tier.holds({"priority_tier": 2, "actionable": 0})
    assert not noise_tier.holds({"priority_tier": None, "actionable": 0})


def test_reason_codes_and_explicit_fields():
    assert reason_labels("spam") == {"actionable": 0}
    assert reason_labels("praise") == {"actionable": 1, "priority_tier": 2}
    assert reason_labels("crisis") == {"actionable": 1, "priority_tier": 1, "crisis": 1}
    with pytest.raises(ValueError, match="reason: 'sarcasm' is not a reason code"):
        reason_labels("sarcasm")
    assert explicit_labels(True, None, False) == {"actionable": 1, "crisis": 0}
