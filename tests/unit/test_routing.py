"""The escalation map: author lists, topics, rule order and each condition kind, and from_yaml's errors."""

from __future__ import annotations

import pytest
import yaml

from triage_ml.errors import ConfigError
from triage_ml.routing import EscalationMap, Route, RoutingMap

FALLBACK = {"name": "rest", "action": "acknowledge"}
NOISE = {"actionable": False, "priority_tier": None, "crisis": False, "topics": []}


def build(rules: list[dict], **spec) -> EscalationMap:
    """A map from its spec, through the same validation as a YAML file; the fallback rule appended."""
    return EscalationMap(RoutingMap.model_validate({"rules": [*rules, FALLBACK], **spec}))


def write(tmp_path, content: str | dict, name: str = "map.yaml"):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content), encoding="utf-8")
    return path


# -- rules ---------------------------------------------------------------------------------------------------
def test_the_first_matching_rule_wins_in_file_order():
    routes = build([{"name": "crisis", "when": {"crisis": True}, "action": "escalate", "team": "pr"},
                    {"name": "actionable", "when": {"actionable": True}, "action": "respond", "team": "care"}])
    both = routes.route(actionable=True, priority_tier=1, crisis=True, topics=[])
    assert both == Route("escalate", "pr", "crisis")
    swapped = build([{"name": "actionable", "when": {"actionable": True}, "action": "respond", "team": "care"},
                     {"name": "crisis", "when": {"crisis": True}, "action": "escalate", "team": "pr"}])
    assert swapped.route(actionable=True, priority_tier=1, crisis=True, topics=[]).rule == "actionable"


def test_the_fallback_rule_routes_what_nothing_else_matches_and_a_team_defaults_to_none():
    routes = build([{"name": "crisis", "when": {"crisis": True}, "action": "escalate", "team": "pr"}])
    route = routes.route(**NOISE)
    assert route == Route("acknowledge", None, "rest")
    assert route.to_dict() == {"action": "acknowledge", "team": None, "rule": "rest",
                              "approval": {"required": False, "by": None, "reasons": []}}


def test_all_conditions_of_a_rule_must_hold():
    routes = build([{"name": "private tier 1", "when": {"actionable": True, "priority_tier": 1, "is_private": True},
                     "action": "respond", "team": "dm"}])
    hit = {"actionable": True, "priority_tier": 1, "crisis": False, "topics": [], "is_private": True}
    assert routes.route(**hit).rule == "private tier 1"
    assert routes.route(**{**hit, "is_private": False}).rule == "rest"
    assert routes.route(**{**hit, "priority_tier": 2}).rule == "rest"


@pytest.mark.parametrize(("when", "matching", "other"), [
    ({"crisis": True}, {"crisis": True}, {"crisis": False}),
    ({"crisis": False}, {"crisis": False}, {"crisis": True}),
    ({"actionable": True}, {"actionable": True}, {"actionable": False}),
    ({"actionable": False}, {"actionable": False}, {"actionable": True}),
    ({"priority_tier": 1}, {"priority_tier": 1}, {"priority_tier": 2}),
    ({"priority_tier": 2}, {"priority_tier": 2}, {"priority_tier": None}),
    ({"sensitive_topic": True}, {"topics": ["legal threat"]}, {"topics": []}),
    ({"sensitive_topic": False}, {"topics": []}, {"topics": ["legal threat"]}),
    ({"is_private": True}, {"is_private": True}, {"is_private": None}),
    ({"is_private": False}, {"is_private": False}, {"is_private": None}),
    ({"channel": ["twitter", "email"]}, {"channel": "email"}, {"channel": "facebook"}),
    ({"channel": ["twitter"]}, {"channel": "twitter"}, {"channel": None}),
    ({"brand": ["acme"]}, {"brand": "acme"}, {"brand": "globex"}),
    ({"crisis_kind": ["legal", "fraud"]}, {"crisis_kind": "fraud"}, {"crisis_kind": "safety"}),
    ({"crisis_kind": ["legal"]}, {"crisis_kind": "legal"}, {"crisis_kind": None}),
])
def test_each_condition_kind_matches_its_fact_and_nothing_else(when, matching, other):
    routes = build([{"name": "the rule", "when": when, "action": "escalate", "team": "t"}])
    assert routes.route(**{**NOISE, **matching}) == Route("escalate", "t", "the rule")
    assert routes.route(**{**NOISE, **other}) == Route("acknowledge", None, "rest")


# -- author lists --------------------------------------------------------------------------------------------
def test_author_lists_come_before_every_rule_and_ignore_case_and_at_signs():
    routes = build([{"name": "crisis", "when": {"crisis": True}, "action": "escalate", "team": "pr"}],
                   authors={"block": ["@SpamBot"], "monitor": ["troll_1", "@spambot"]})
    crisis = {"actionable": True, "priority_tier": 1, "crisis": True, "topics": []}
    for handle in ("spambot", "@spambot", "SPAMBOT", "@SpamBot"):
        assert routes.route(**crisis, author=handle) == Route("block", None, "authors.block")  # block before monitor
    assert routes.route(**crisis, author="@Troll_1") == Route("monitor", None, "authors.monitor")
    assert routes.route(**crisis, author="someone").rule == "crisis"
    assert routes.route(**crisis, author="").rule == "crisis" and routes.route(**crisis, author=None).rule == "crisis"


# -- sensitive topics ----------------------------------------------------------------------------------------
TOPICS = [{"name": "gossip", "patterns": ["rumou?r"]},
          {"name": "legal threat", "patterns": [r"\blawyers?\b", "see you in court"], "crisis_kind": "legal"},
          {"name": "press", "patterns": ["journalist"], "crisis_kind": "media"}]


def test_topics_match_case_insensitive_regexes_in_map_order():
    routes = build([], sensitive_topics=TOPICS)
    assert routes.topics_in("My LAWYER heard a Rumor from a journalist") == ["gossip", "legal threat", "press"]
    assert routes.topics_in("See You In Court") == ["legal threat"]
    assert routes.topics_in("lawyered up") == []  # \b: a word, not a prefix
    assert routes.topics_in("where is my parcel") == []


def test_the_topic_kind_is_the_first_matched_topic_that_names_one():
    routes = build([], sensitive_topics=TOPICS)
    assert routes.topic_kind(["gossip", "press", "legal threat"]) == "media"
    assert routes.topic_kind(["gossip"]) is None and routes.topic_kind([]) is None


def test_crisis_floor_is_the_maps_or_the_default():
    assert build([]).crisis_floor == 0.6
    assert build([], crisis_floor=0.35).crisis_floor == 0.35


# -- from_yaml -----------------------------------------------------------------------------------------------
def test_a_valid_file_loads_with_its_source(tmp_path):
    path = write(tmp_path, {"crisis_floor": 0.7, "sensitive_topics": TOPICS[:1], "rules": [FALLBACK]})
    routes = EscalationMap.from_yaml(path)
    assert routes.source == str(path) and routes.crisis_floor == 0.7 and routes.topics_in("a rumour") == ["gossip"]


RULES = [FALLBACK]


@pytest.mark.parametrize(("content", "message"), [
    ("", "'(top level)': Input should be a valid dictionary"),
    ("- just\n- a list\n", "'(top level)': Input should be a valid dictionary"),
    ({"crisis_floor": 0.5}, "'rules': Field required"),
    ({"rules": []}, "'rules': List should have at least 1 item"),
    ({"rules": [{"name": "c", "when": {"crisis": True}, "action": "escalate"}]},
     "'rules': the last rule must have no conditions, so that every message gets a route"),
    ({"rules": [{"name": "x", "action": "explode"}]}, "'rules.0.action': Input should be 'escalate', 'respond'"),
    ({"rules": [{"action": "respond"}]}, "'rules.0.name': Field required"),
    ({"rules": [{"name": "x", "when": {"priority_tier": 3}, "action": "respond"}, *RULES]},
     "'rules.0.when.priority_tier': Input should be 1 or 2"),
    ({"rules": [{"name": "x", "when": {"sentiment": "bad"}, "action": "respond"}, *RULES]},
     "'rules.0.when.sentiment': unknown field; accepted here: crisis, actionable, priority_tier"),
    ({"rules": [{"name": "x", "when": {"crisis_kind": ["riot"]}, "action": "respond"}, *RULES]},
     "'rules.0.when.crisis_kind': unknown crisis kind 'riot'; use one of safety, legal"),
    ({"rules": RULES, "colour": "red"}, "'colour': unknown field; accepted here: version, crisis_floor"),
    ({"rules": RULES, "crisis_floor": 1.5}, "'crisis_floor': Input should be less than or equal to 1"),
    ({"rules": RULES, "crisis_floor": -0.1}, "'crisis_floor': Input should be greater than or equal to 0"),
    ({"rules": RULES, "authors": {"ban": ["x"]}}, "'authors.ban': unknown field; accepted here: block, monitor"),
    ({"rules": RULES, "sensitive_topics": [{"name": "t", "patterns": ["(oops"]}]},
     "'sensitive_topics.0.patterns': pattern '(oops' is not a valid regex"),
    ({"rules": RULES, "sensitive_topics": [{"name": "t", "patterns": []}]},
     "'sensitive_topics.0.patterns': List should have at least 1 item"),
    ({"rules": RULES, "sensitive_topics": [{"name": "t", "patterns": ["x"], "crisis_kind": "riot"}]},
     "'sensitive_topics.0.crisis_kind': unknown crisis kind 'riot'"),
])
def test_an_invalid_map_is_refused_naming_the_file_and_the_field(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(ConfigError) as err:
        EscalationMap.from_yaml(path)
    assert str(err.value).startswith(f"{path}: {message}"), str(err.value)


def test_invalid_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "version: 1\nrules:\n\t- name: x\n")
    with pytest.raises(ConfigError) as err:
        EscalationMap.from_yaml(path)
    assert str(err.value) == f"{path}: invalid YAML at line 3"


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError) as err:
        EscalationMap.from_yaml(tmp_path / "nope.yaml")
    assert str(err.value) == f"{tmp_path / 'nope.yaml'}: routing map not found"


@pytest.mark.parametrize("kind", ["latin-1", "directory"])
def test_an_unreadable_map_is_a_config_error(tmp_path, kind):
    path = tmp_path / "map.yaml"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_bytes("rules:\n  - name: caf\xe9\n    action: respond\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"map\.yaml"):
        EscalationMap.from_yaml(path)
