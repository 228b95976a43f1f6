"""The scoring API's contract, in process (FastAPI's TestClient on the real app, a real MLflow store and
registry, a real label store): results and their fields, auth and roles, limits and validation messages."""

from __future__ import annotations

import pytest

from tests.integration.service_fixtures import KEYS, InProcessService
from triage_ml.taxonomy import CRISIS_KIND_NAMES, CRISIS_KINDS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(trained_store, tmp_path_factory):
    settings, _ = trained_store
    with InProcessService(settings, tmp_path_factory.mktemp("contract"), max_batch=8, max_body_bytes=200_000,
                          model_poll_seconds=0) as running:
        yield running


def score(service, *messages, role="scorer"):
    with service.client(role) as c:
        return c.post("/v1/score", json={"messages": list(messages)})


def test_a_message_in_another_language_says_so_and_is_low_confidence(service):
    r = score(service, {"text": "@Munchly mi pedido nunca llegó y me cobraron dos veces, ¿qué pasa?"},
              {"text": "ok"})
    assert r.status_code == 200, r.text
    spanish, short = r.json()["results"]
    assert spanish["language"]["code"] == "es" and spanish["language"]["confidence"] >= 0.5
    assert spanish["low_confidence"] is True
    assert "written in Spanish (es, p=" in spanish["explanation"]["summary"]
    assert "trained on English" in spanish["explanation"]["summary"]
    assert short["language"]["code"] == "und" and short["low_confidence"] is False


def test_a_follow_up_is_judged_with_the_turn_it_answers(service):
    asked = {"text": "did the replacement card arrive?", "from": "brand"}
    closing = {"text": "glad we could help! anything else we can do for you today?", "from": "brand"}
    r = score(service, {"text": "nope", "in_reply_to": asked}, {"text": "nope", "in_reply_to": closing},
              {"text": "nope", "thread": [{"text": "my new card never came", "from": "customer"}, asked]},
              {"text": "nope"})
    assert r.status_code == 200, r.text
    after_question, after_closing, with_thread, alone = r.json()["results"]
    for result in (after_question, after_closing, with_thread):
        assert result["thread"]["used"] is True and result["thread"]["answered_from"] == "brand"
        assert "judged with the turn it answers (from the brand)" in result["explanation"]["summary"]
    def probs(result: dict) -> tuple:  # the heads the thread head may answer for (those that beat the text alone)
        return result["actionable_prob"], (result["tier_probs"] or {}).get("1"), result["crisis_risk"]

    assert probs(after_question) != probs(after_closing)
    assert with_thread["thread"]["turns"] == 2 and after_question["thread"]["turns"] == 1
    assert probs(with_thread) == pytest.approx(probs(after_question), abs=1e-6)  # the same answered turn
    assert alone["thread"] is None and probs(alone) not in (probs(after_question), probs(after_closing))


def test_an_answered_turn_by_unknown_id_is_scored_without_it_and_says_so(service):
    r = score(service, {"text": "done, ref 1-3001408092", "in_reply_to": {"message_id": "never-scored"}})
    assert r.status_code == 200, r.text
    thread = r.json()["results"][0]["thread"]
    assert thread["used"] is False and thread["turns"] == 0
    assert "'never-scored' is not in the label store" in thread["notes"][0]
    first = score(service, {"text": "my parcel never came, order 5512", "message_id": "p-1"})
    assert first.status_code == 200
    r = score(service, {"text": "still nothing", "in_reply_to": {"message_id": "p-1"}})
    thread = r.json()["results"][0]["thread"]
    assert thread == {"turns": 1, "answered_from": "customer", "used": True, "notes": []}


def test_single_and_batch_in_order(service, trained_store):
    _, outcome = trained_store
    one = score(service, {"text": "@Munchly my order never arrived and I was charged twice", "message_id": "a1"})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model"] == {"name": "triage-ml", "version": outcome.version}
    result = body["results"][0]
    assert set(result) == {"message_id", "actionable", "actionable_prob", "priority_tier", "tier_probs", "crisis_risk",
                           "crisis", "crisis_kind", "route", "explanation", "language", "low_confidence",
                           "context", "thread", "sentiment", "model_version"}
    assert result["context"] is None  # it names neither an author nor a conversation
    assert result["thread"] is None  # sent without one: judged on its text alone
    assert result["sentiment"] is None  # trained without sentiment labels (the subset has none)
    assert result["language"]["code"] == "en" and result["low_confidence"] is False
    assert result["crisis_kind"] is None, "only a crisis names its kind"
    assert result["message_id"] == "a1" and result["actionable"] and result["priority_tier"] == 1
    assert result["route"] == {"action": "respond", "team": "care", "rule": "tier 1",
        "approval": {"required": False, "by": None, "reasons": []}}
    assert result["explanation"]["summary"].startswith("tier 1")
    assert result["explanation"]["similar"], "nearest labeled examples are cited"
    texts = ["RT + follow to win a free pizza!! #giveaway", "love the new app, thank you @cloudnote",
             "@HarborBank someone emptied my account, I didn't authorise any of it"]
    batch = score(service, *({"text": t, "message_id": f"b{i}"} for i, t in enumerate(texts)))
    assert batch.status_code == 200
    results = batch.json()["results"]
    assert [r["message_id"] for r in results] == ["b0", "b1", "b2"]
    assert not results[0]["actionable"] and results[0]["priority_tier"] is None and results[0]["tier_probs"] is None
    assert results[0]["route"]["action"] == "ignore"
    assert results[1]["actionable"] and results[1]["priority_tier"] == 2
    assert results[2]["crisis"] and results[2]["route"] == {  # the shipped map: a crisis reply needs PR's sign-off
        "action": "escalate", "team": "pr", "rule": "crisis",
        "approval": {"required": True, "by": "pr", "reasons": ["route 'crisis' needs pr sign-off"]}}
    kind = results[2]["crisis_kind"]
    assert kind["kind"] in CRISIS_KINDS and 0 < kind["probability"] <= 1
    assert results[2]["explanation"]["summary"].startswith(f"crisis: {CRISIS_KIND_NAMES[kind['kind']]} (")
    # the same message scores the same under the same model version (to float noise: batch padding
    # changes the encoder's sums by ~1e-7; exact replay by message_id comes with recorded predictions)
    again = score(service, {"text": texts[2], "message_id": "b2"}).json()["results"][0]
    for key in ("actionable", "priority_tier", "crisis", "route", "model_version"):
        assert again[key] == results[2][key]
    assert again["crisis_risk"] == pytest.approx(results[2]["crisis_risk"], abs=1e-6)


def test_auth_and_roles(service):
    message = {"text": "where is my parcel"}
    assert score(service, message, role=None).status_code == 401
    with service.client(None) as c:
        response = c.post("/v1/score", json={"messages": [message]}, headers={"X-API-Key": "not-a-real-key-123456"})
        assert response.status_code == 401 and "not-a-real-key" not in response.text
    assert score(service, message, role="agent").status_code == 403
    assert score(service, message, role="admin").status_code == 200
    with service.client("scorer") as c:
        assert c.post("/v1/admin/reload").status_code == 403
        assert c.get("/v1/model").status_code == 200
    with service.client(None) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/v1/model").status_code == 401
    assert not any(key in service.log.read_text() for key in KEYS.values()), "keys are never logged"


@pytest.mark.parametrize(("payload", "status", "fragment"), [
    ({"messages": [{"text": "   "}]}, 422, "messages.0.text"),
    ({"messages": [{"text": "x" * 10_001}]}, 422, "10,000"),
    ({"messages": [{"text": "ok", "sentiment": "angry"}]}, 422, "messages.0.sentiment"),
    ({"messages": [{"text": 5}]}, 422, "messages.0.text"),
    ({"messages": [{"text": "ok", "is_private": "yes"}]}, 422, "messages.0.is_private"),
    ({"messages": []}, 422, "messages"),
    ({"message": [{"text": "ok"}]}, 422, "message"),
    ({"messages": [{"text": "ok"}] * 9}, 413, "limit is 8"),
    ({"messages": [{"text": "ok", "thread": [{"text": "hi", "from": "agent"}]}]}, 422, "messages.0.thread.0.from"),
    ({"messages": [{"text": "ok", "thread": [{"from": "brand"}]}]}, 422, "messages.0.thread.0.text"),
    ({"messages": [{"text": "ok", "thread": [{"text": "hi", "from": "brand"}] * 21}]}, 422,
     "21 turns; the limit is 20"),
    ({"messages": [{"text": "ok", "in_reply_to": {"from": "brand"}}]}, 422, "in_reply_to needs"),
])
def test_bad_input_is_a_clear_4xx(service, payload, status, fragment):
    with service.client() as c:
        response = c.post("/v1/score", json=payload)
    assert response.status_code == status, response.text
    assert fragment in response.text


def test_invalid_json_and_huge_body(service):
    with service.client() as c:
        response = c.post("/v1/score", content=b'{"messages": [', headers={"Content-Type": "application/json"})
        assert response.status_code == 422 and "JSON" in response.text
        response = c.post("/v1/score", content=b"x" * 300_000, headers={"Content-Type": "application/json"})
        assert response.status_code == 413


def test_any_unicode_is_scored(service):
    texts = ["\x00\x07 ctrl \u202e bidi", "🙃🙃🙃", "日本語のツイート", "a\nb\tc", "\ud7ff"]
    response = score(service, *({"text": t} for t in texts))
    assert response.status_code == 200 and len(response.json()["results"]) == len(texts)


def test_watch_list_lifts_crisis_and_routes_to_pr(service):
    result = score(service, {"text": "refund me or see you in court"}).json()["results"][0]
    assert "legal threat" in result["explanation"]["topics"]
    assert result["crisis_risk"] >= 0.6 and result["crisis"]
    assert result["route"]["action"] == "escalate" and result["route"]["team"] == "pr"
    assert "watch-list: legal threat" in result["explanation"]["summary"]
    if result["crisis_kind"]["probability"] is None:  # the watch-list, not the model, made it a crisis
        assert result["crisis_kind"]["kind"] == "legal"
    assert result["crisis_kind"]["kind"] in CRISIS_KINDS
