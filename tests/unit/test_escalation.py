"""escalate(): the one decision function of the API, score-batch and Spark, for crisis kinds."""

import math

import pytest
import yaml

from triage_ml.errors import ConfigError
from triage_ml.messages import Message
from triage_ml.routing import EscalationMap
from triage_ml.scoring import escalate


def decide(*args):
    """escalate()'s decision as the API shows it (scoring adds the id and the explanation), and the watch-list
    topics it matched."""
    result = escalate(*args)
    shown = result.to_dict()
    assert shown.pop("message_id") is None and shown.pop("explanation") is None
    # the language (tests/unit/test_language.py): these messages are English or too short to tell
    assert shown.pop("language")["code"] in ("en", "und") and shown.pop("low_confidence") is False
    assert shown.pop("context") is None  # no label store here (tests/integration/test_context.py)
    assert shown.pop("thread") is None  # sent without a thread (tests/unit/test_threads.py)
    assert shown.pop("sentiment") is None  # these rows come from a model without a sentiment head
    return shown, list(result.topics)


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
    result, _ = decide(row(0.9, "legal", 0.8), Message("my lawyer will call"), routes, 0.5)
    assert result["crisis_kind"] == {"kind": "legal", "probability": 0.8}
    assert result["route"] == {"action": "escalate", "team": "legal", "rule": "legal crisis",
        "approval": {"required": False, "by": None, "reasons": []}}
    result, _ = decide(row(0.9, "safety", 0.7), Message("it caught fire"), routes, 0.5)
    assert result["route"]["team"] == "pr" and result["crisis_kind"]["kind"] == "safety"


def test_sentiment_travels_with_its_probabilities(routes):
    prediction = {**row(0.1), "sentiment": "negative", "sentiment_negative": 0.71234, "sentiment_neutral": 0.2,
                  "sentiment_positive": 0.08766}
    result = escalate(prediction, Message("where is my parcel, this is a joke"), routes, 0.5)
    assert result.to_dict()["sentiment"] == {"label": "negative", "probs": {"negative": 0.7123, "neutral": 0.2,
                                                                            "positive": 0.0877}}
    assert result.flat()["sentiment"] == "negative"


def test_no_kind_without_a_crisis(routes):
    result, _ = decide(row(0.1, None), Message("where is my parcel"), routes, 0.5)
    assert result["crisis_kind"] is None and not result["crisis"]


def test_a_watch_list_crisis_takes_the_topic_kind(routes):
    result, topics = decide(row(0.1, None), Message("refund me or see you in court"), routes, 0.5)
    assert topics == ["legal threat"] and result["crisis"]
    assert result["crisis_kind"] == {"kind": "legal", "probability": None}
    result, _ = decide(row(0.1, None), Message("heard a rumour"), routes, 0.5)
    assert result["crisis"] and result["crisis_kind"] is None, "a topic without a kind names none"


def test_unknown_kinds_in_the_map_are_refused(tmp_path):
    bad = {**MAP, "sensitive_topics": [{"name": "x", "patterns": ["x"], "crisis_kind": "riot"}]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match="unknown crisis kind 'riot'"):
        EscalationMap.from_yaml(path)


# -- the watch-list lift, the taxonomy's rules and the API fields ------------------------------------------
def noise_row(crisis_risk, missing=None):
    """A row as ``predict_frame`` gives it for noise: tier columns missing (None, or NaN after a Parquet or
    Spark round trip)."""
    return {"actionable": False, "actionable_prob": 0.2, "priority_tier": missing, "tier1_prob": missing,
            "tier2_prob": missing, "crisis_risk": crisis_risk, "crisis": False, "crisis_kind": None,
            "crisis_kind_prob": math.nan}


def test_a_watch_list_match_lifts_crisis_risk_to_the_floor_and_never_lowers_it(routes):
    lifted, topics = decide(row(0.1), Message("a rumour"), routes, 0.7)
    assert topics == ["gossip"] and lifted["crisis_risk"] == 0.6 and lifted["crisis"] is False  # 0.6 < 0.7
    high, _ = decide(row(0.9), Message("a rumour"), routes, 0.7)
    assert high["crisis_risk"] == 0.9
    plain, topics = decide(row(0.1), Message("no topic here"), routes, 0.5)
    assert topics == [] and plain["crisis_risk"] == 0.1 and plain["crisis"] is False


def test_crisis_risk_at_the_threshold_is_a_crisis(routes):
    assert decide(row(0.5), Message("x"), routes, 0.5)[0]["crisis"] is True
    assert decide(row(0.4999), Message("x"), routes, 0.5)[0]["crisis"] is False


def test_a_crisis_is_actionable_and_tier_1_whatever_the_heads_said(routes):
    called_tier_2 = {**row(0.9), "actionable": False, "priority_tier": 2, "tier1_prob": 0.2, "tier2_prob": 0.8}
    result, _ = decide(called_tier_2, Message("x"), routes, 0.5)
    assert (result["actionable"], result["priority_tier"], result["crisis"]) == (True, 1, True)
    assert result["tier_probs"] == {"1": 0.2, "2": 0.8}, "the heads' own probabilities are reported unchanged"


@pytest.mark.parametrize("missing", [None, math.nan])
def test_noise_has_no_tier_and_no_tier_probs(routes, missing):
    result, _ = decide(noise_row(0.1, missing), Message("lol"), routes, 0.5)
    assert result == {"actionable": False, "actionable_prob": 0.2, "priority_tier": None, "tier_probs": None,
                      "crisis_risk": 0.1, "crisis": False, "crisis_kind": None,
                      "route": {"action": "respond", "team": "care", "rule": "rest",
                                "approval": {"required": False, "by": None, "reasons": []}}}


def test_noise_drops_a_tier_the_model_still_gave(routes):
    stale = {**row(0.1), "actionable": False, "priority_tier": 2}
    assert decide(stale, Message("lol"), routes, 0.5)[0]["priority_tier"] is None


@pytest.mark.parametrize(("model_tier", "tier"), [(2, 2), (2.0, 2), (1, 1), (None, None), (math.nan, None)])
def test_an_actionable_message_keeps_the_models_tier_as_an_int(routes, model_tier, tier):
    result, _ = decide({**row(0.1), "priority_tier": model_tier}, Message("where is it"), routes, 0.5)
    assert result["priority_tier"] == tier and type(result["priority_tier"]) is type(tier)


@pytest.mark.parametrize("missing", [None, math.nan])
def test_a_watch_list_crisis_the_heads_called_noise_is_tier_1_with_certain_tier_probs(routes, missing):
    result, topics = decide(noise_row(0.1, missing), Message("see you in court"), routes, 0.5)
    assert topics == ["legal threat"]
    assert result == {"actionable": True, "actionable_prob": 0.2, "priority_tier": 1,
                      "tier_probs": {"1": 1.0, "2": 0.0}, "crisis_risk": 0.6, "crisis": True,
                      "crisis_kind": {"kind": "legal", "probability": None},
                      "route": {"action": "escalate", "team": "legal", "rule": "legal crisis",
                                "approval": {"required": False, "by": None, "reasons": []}}}


def test_the_models_kind_wins_over_the_topics_kind(routes):
    result, topics = decide(row(0.9, "safety", 0.7), Message("it caught fire, see you in court"), routes, 0.5)
    assert topics == ["legal threat"]
    assert result["crisis_kind"] == {"kind": "safety", "probability": 0.7} and result["route"]["team"] == "pr"


@pytest.mark.parametrize("no_kind", [None, math.nan])
def test_a_model_crisis_without_a_kind_takes_the_topics_or_none(routes, no_kind):
    with_topic, _ = decide(row(0.9, no_kind), Message("see you in court"), routes, 0.5)
    assert with_topic["crisis_kind"] == {"kind": "legal", "probability": None}
    without, _ = decide(row(0.9, no_kind), Message("it is all broken"), routes, 0.5)
    assert without["crisis_kind"] is None and without["route"]["rule"] == "crisis"


def test_the_message_fields_reach_the_route(tmp_path):
    spec = {**MAP, "authors": {"block": ["@spam"]},
            "rules": [{"name": "dm", "when": {"is_private": True, "channel": ["twitter"], "brand": ["acme"]},
                       "action": "respond", "team": "dm"}, *MAP["rules"]]}
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump(spec))
    routes = EscalationMap.from_yaml(path)
    dm = Message("hi", channel="twitter", brand="acme", is_private=True)
    assert decide(row(0.1), dm, routes, 0.5)[0]["route"]["rule"] == "dm"
    public = Message("hi", channel="twitter", brand="acme", is_private=False)
    assert decide(row(0.1), public, routes, 0.5)[0]["route"]["rule"] == "rest"
    blocked = Message("see you in court", author="SPAM")
    assert decide(row(0.9), blocked, routes, 0.5)[0]["route"] == {"action": "block", "team": None,
                                                                     "rule": "authors.block", "approval": {
                                                                         "required": False, "by": None, "reasons": []}}
