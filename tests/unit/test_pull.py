"""pull.agreed_labels: each lead's latest answer, merged; the heads where leads differ."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from triage_ml.review.labeling import LeadAnswer
from triage_ml.review.pull import _Annotation, agreed_labels

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def ann(id_: int, lead: str, labels: dict[str, int], minutes: float | None = 0) -> _Annotation:
    at = None if minutes is None else T0 + timedelta(minutes=minutes)
    return _Annotation(id_, lead, LeadAnswer(labels, reason=None, note=None), at)


NOISE = {"actionable": 0, "crisis": 0}
TIER2 = {"actionable": 1, "priority_tier": 2, "crisis": 0}


def test_no_annotation_agrees_on_nothing():
    assert agreed_labels([]) == ({}, [])


def test_one_lead_gives_their_labels():
    assert agreed_labels([ann(1, "lea", TIER2)]) == (TIER2, [])


def test_leads_who_agree_give_the_common_labels():
    assert agreed_labels([ann(1, "lea", TIER2), ann(2, "bo", dict(TIER2), 5)]) == (TIER2, [])


def test_a_head_only_one_lead_answered_is_taken():
    labels, differ = agreed_labels([ann(1, "lea", {"actionable": 1}), ann(2, "bo", {"actionable": 1, "crisis": 0})])
    assert (labels, differ) == ({"actionable": 1, "crisis": 0}, [])


def test_leads_who_differ_are_named_by_head_once_and_sorted():
    _, differ = agreed_labels([ann(1, "lea", TIER2), ann(2, "bo", NOISE, 1), ann(3, "cy", NOISE, 2)])
    assert differ == ["actionable"]
    _, differ = agreed_labels([ann(1, "lea", {"crisis": 1, "actionable": 1}), ann(2, "bo", NOISE, 1)])
    assert differ == ["actionable", "crisis"]


def test_a_lead_who_changed_their_answer_counts_with_the_latest_one():
    edited = [ann(1, "lea", NOISE, 0), ann(2, "bo", TIER2, 5), ann(3, "lea", TIER2, 10)]
    assert agreed_labels(edited) == (TIER2, [])
    assert agreed_labels(list(reversed(edited))) == (TIER2, []), "input order does not matter, time does"


def test_same_time_falls_back_to_the_annotation_id():
    assert agreed_labels([ann(7, "lea", TIER2, 0), ann(3, "lea", NOISE, 0)]) == (TIER2, [])
    assert agreed_labels([ann(3, "lea", TIER2, 0), ann(7, "lea", NOISE, 0)]) == (NOISE, [])


def test_an_annotation_without_a_time_is_older_than_any_timed_one():
    assert agreed_labels([ann(9, "lea", NOISE, None), ann(1, "lea", TIER2, -60)]) == (TIER2, [])


def test_a_head_where_leads_differ_is_not_among_the_agreed_labels():
    labels, differ = agreed_labels([ann(1, "lea", TIER2), ann(2, "bo", {"actionable": 0}, 1)])
    assert differ == ["actionable"] and labels == {"priority_tier": 2, "crisis": 0}
