"""Reading a lead's Label Studio answer back into labels, and the labeling config it answers in."""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from triage_ml.review.labeling import labeling_config, prediction_result, read_annotation
from triage_ml.review.projects import DESCRIPTIONS
from triage_ml.taxonomy import ACTIONABLE_REASONS, REASONS

ROOT = Path(__file__).resolve().parents[2]


def choices(**picked):
    return [{"from_name": k, "to_name": "text", "type": "choices", "value": {"choices": [v]}}
            for k, v in picked.items()]


def test_config_uses_the_taxonomys_names_and_every_reason():
    root = ET.fromstring(labeling_config())
    names = {c.get("name"): [o.get("value") for o in c] for c in root.iter("Choices")}
    assert names["actionable"] == ["actionable", "noise"]
    assert names["priority_tier"] == ["1", "2"]
    assert names["crisis"] == ["crisis", "no crisis"]
    assert set(names["reason"]) == set(ACTIONABLE_REASONS)
    assert {t.get("name") for t in root.iter("TextArea")} == {"note"}
    assert {t.get("value") for t in root.iter("Text")} == {"$text", "$context", "$why"}


@pytest.mark.parametrize("kind", sorted(DESCRIPTIONS))
def test_project_descriptions_carry_the_taxonomy_and_name_only_files_of_this_repository(kind):
    """Leads read the project's description in Label Studio: it must say what the answers mean, and any file
    it points to must be one this repository has (no path outside it: no .., no absolute or home path)."""
    text = DESCRIPTIONS[kind]
    paths = [m.rstrip(".,;:)") for m in re.findall(r"[^\s(]*[/\\][^\s]*", text)]
    for path in paths:
        assert ".." not in path and not path.startswith(("/", "~", "\\")), path
        assert (ROOT / path).is_file(), f"{path} is not a file of this repository"
    assert "docs/taxonomy.md" in paths
    assert all(re.search(rf"\b{code}\b", text) for code in REASONS), "every reason code, with its meaning"
    assert "tier 1 wins" in text and "always actionable and tier 1" in text


@pytest.mark.parametrize(("picked", "labels"), [
    ({"actionable": "noise", "crisis": "no crisis"}, {"actionable": 0, "crisis": 0}),
    ({"actionable": "actionable", "crisis": "crisis"}, {"actionable": 1, "priority_tier": 1, "crisis": 1}),
    ({"actionable": "actionable", "reason": "praise", "crisis": "no crisis"},
     {"actionable": 1, "priority_tier": 2, "crisis": 0}),
    ({"actionable": "actionable", "reason": "crisis"}, {"actionable": 1, "priority_tier": 1, "crisis": 1}),
    ({"actionable": "actionable"}, {"actionable": 1}),
])
def test_answers_become_closed_labels(picked, labels):
    answer = read_annotation(choices(**picked))
    assert answer.problem is None and answer.labels == labels


@pytest.mark.parametrize(("picked", "problem"), [
    ({"actionable": "noise", "crisis": "crisis"}, "a crisis is always actionable"),
    ({"actionable": "noise", "priority_tier": "1"}, "noise (actionable: false) has no tier"),
    ({"actionable": "actionable", "priority_tier": "2", "crisis": "crisis"}, "a crisis is always tier 1"),
    ({"actionable": "actionable", "priority_tier": "2", "reason": "complaint"}, "is a tier 1 reason"),
    ({"actionable": "noise", "reason": "question"}, "the answer is noise"),
    ({"actionable": "actionable", "reason": "crisis", "crisis": "no crisis"}, "contradicts the answer 'no crisis'"),
    ({"crisis": "no crisis"}, "actionable: not answered"),
    ({"actionable": "maybe"}, "'maybe' is not one of actionable, noise"),
    ({"actionable": "actionable", "priority_tier": "3"}, "'3' is not 1 or 2"),
])
def test_contradictions_are_reported_and_give_no_labels(picked, problem):
    answer = read_annotation(choices(**picked))
    assert answer.labels == {} and problem in answer.problem


def test_note_and_reason_are_kept():
    note = {"from_name": "note", "to_name": "text", "type": "textarea", "value": {"text": ["asks about ", "refunds"]}}
    result = [*choices(actionable="actionable", reason="question"), note]
    answer = read_annotation(result)
    assert answer.reason == "question" and answer.note == "asks about  refunds"


def test_prediction_becomes_a_pre_annotation_the_config_accepts():
    result = prediction_result({"actionable": True, "priority_tier": 1, "crisis": False})
    assert [(r["from_name"], r["value"]["choices"]) for r in result] == [
        ("actionable", ["actionable"]), ("priority_tier", ["1"]), ("crisis", ["no crisis"])]
    assert read_annotation(result).labels == {"actionable": 1, "priority_tier": 1, "crisis": 0}
    noise = prediction_result({"actionable": False, "priority_tier": None, "crisis": False})
    assert [r["from_name"] for r in noise] == ["actionable", "crisis"]
