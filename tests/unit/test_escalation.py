"""escalate(): the one decision function of the API, score-batch and Spark, for crisis kinds."""

import math

import pytest
import yaml

from triage_ml.errors import ConfigError
from triage_ml.messages import Message
from triage_ml.routing import EscalationMap
from triage_ml.scoring import escalate

MAP = {"crisis_floor": 0.6,
       "sensitive_topics": [{"name": "legal threat", "patterns": ["see you in court"], "crisis_kind": "legal"},
                            {"name": "gossip", "patterns": ["rumour"]}],
       "rules": [{"name": "legal crisis", "when": {"crisis": True, "crisis_kind": ["legal"]}, "action": "escalate",
                  "team": "legal"},
                 {"name": "crisis", "when": {"crisis": True}, "action": "escalate", "team": "pr"},
                 {"name": "rest", "action": "respond", "team": "care"}]}


def row(crisis_risk, kind=None, kind_prob=math.nan):
    return {"actionable": True, "actionable_prob": 0.9, "priority_tier": 1, "tier1_prob": 0.9, "tier2_prob": 0.1,
            "crisis_risk": crisis_risk, "crisis": crisis_risk >= 0.5, "crisis_kind": kind,
            "crisis_kind_prob": kind_prob}


@pytest.fixture
def routes(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump(MAP))
    return EscalationMap.from_yaml(path)


def test_model_kind_travels_and_picks_the_route(routes):
    result, _ = escalate(row(0.9, "legal", 0.8), Message("my lawyer will call"), routes, 0.5)
    assert result["crisis_kind"] == {"kind": "legal", "probability": 0.8}
    assert result["route"] == {"action": "escalate", "team": "legal", "rule": "legal crisis"}
    result, _ = escalate(row(0.9, "safety", 0.7), Message("it caught fire"), routes, 0.5)
    assert result["route"]["team"] == "pr" and result["crisis_kind"]["kind"] == "safety"


def test_no_kind_without_a_crisis(routes):
    result, _ = escalate(row(0.1, None), Message("where is my parcel"), routes, 0.5)
    assert result["crisis_kind"] is None and not result["crisis"]


def test_a_watch_list_crisis_takes_the_topic_kind(routes):
    result, topics = escalate(row(0.1, None), Message("refund me or see you in court"), routes, 0.5)
    assert topics == ["legal threat"] and result["crisis"]
    assert result["crisis_kind"] == {"kind": "legal", "probability": None}
    result, _ = escalate(row(0.1, None), Message("heard a rumour"), routes, 0.5)
    assert result["crisis"] and result["crisis_kind"] is None, "a topic without a kind names none"


def test_unknown_kinds_in_the_map_are_refused(tmp_path):
    bad = {**MAP, "sensitive_topics": [{"name": "x", "patterns": ["x"], "crisis_kind": "riot"}]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match="unknown crisis kind 'riot'"):
        EscalationMap.from_yaml(path)
