"""Language detection (py3langid, its model inside the wheel) and what scoring does with it."""

from __future__ import annotations

import math

import pytest

from triage_ml.language import ENGLISH, UNDETERMINED, Language, detect
from triage_ml.messages import Message
from triage_ml.routing import EscalationMap, RoutingMap
from triage_ml.scoring import escalate


@pytest.mark.parametrize(("text", "code"), [
    ("where is my refund, it has been two weeks", "en"),
    ("@NovaTelco ¿dónde está mi pedido? llevo dos semanas esperando", "es"),
    ("Mein Paket ist immer noch nicht da, was ist los?", "de"),
    ("وين طلبي؟ صار لي أسبوع أنتظر", "ar"),  # py3langid's Gulf/Egyptian varieties are Arabic to the product
    ("我的快递到底什么时候到", "zh"),
])
def test_a_message_gets_its_language(text, code):
    found = detect(text)
    assert found.code == code and 0.5 <= found.confidence <= 1


@pytest.mark.parametrize("text", ["ok", "😡😡", "@NovaTelco https://example.com/order/1 #fail", "", "12345"])
def test_a_text_without_enough_language_is_undetermined_and_not_foreign(text):
    found = detect(text)
    assert found.code == UNDETERMINED and not found.foreign


def test_the_floor_decides_when_a_guess_is_named():
    guess = detect("ugh, again??", min_confidence=0.0)
    assert guess.code != UNDETERMINED and guess.confidence < 0.5
    assert detect("ugh, again??").code == UNDETERMINED  # the default floor, 0.5
    assert Language.from_dict(guess.to_dict()) == guess and Language.from_dict(None) is None


def prediction() -> dict:
    return {"actionable": True, "actionable_prob": 0.9, "priority_tier": 1, "tier1_prob": 0.9, "tier2_prob": 0.1,
            "crisis_risk": 0.01, "crisis": False, "crisis_kind": None, "crisis_kind_prob": math.nan}


ROUTES = EscalationMap(RoutingMap.model_validate({"rules": [
    {"name": "spanish desk", "when": {"language": ["es"]}, "action": "respond", "team": "care-es"},
    {"name": "rest", "action": "respond", "team": "care"}]}))


def test_another_language_is_low_confidence_and_the_map_can_route_it():
    spanish = escalate(prediction(), Message("mi pedido no ha llegado y nadie contesta"), ROUTES, 0.5)
    assert spanish.language.code == "es" and spanish.low_confidence
    assert (spanish.route.rule, spanish.route.team) == ("spanish desk", "care-es")
    shown = spanish.to_dict()
    assert shown["language"]["code"] == "es" and shown["low_confidence"] is True
    assert spanish.flat()["language"] == "es" and spanish.flat()["low_confidence"] is True
    english = escalate(prediction(), Message("my order never arrived and nobody answers"), ROUTES, 0.5)
    assert english.language.code == ENGLISH and not english.low_confidence and english.route.rule == "rest"
    short = escalate(prediction(), Message("ok"), ROUTES, 0.5)
    assert short.language.code == UNDETERMINED and not short.low_confidence


def test_the_maps_floor_is_used():
    strict = EscalationMap(RoutingMap.model_validate({**ROUTES.spec.model_dump(), "language_min_confidence": 1.0}))
    assert escalate(prediction(), Message("mi pedido no ha llegado"), strict, 0.5).language.code == UNDETERMINED
