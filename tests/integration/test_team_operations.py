"""Team operations through the app (in process): the audit trail, and the escalation map as a living document."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.integration.service_fixtures import InProcessService
from triage_ml.routing import EscalationMap

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(trained_store, tmp_path_factory):
    settings, _ = trained_store
    with InProcessService(settings, tmp_path_factory.mktemp("team"), model_poll_seconds=0,
                          routing_poll_seconds=0.2) as running:
        yield running


@pytest.fixture(scope="module")
def lena(service):
    """A personal lead key: what she writes is hers in the audit trail and the map history."""
    with service.client("admin") as c:
        r = c.post("/v1/admin/keys", json={"role": "lead", "name": "lena"})
    assert r.status_code == 201, r.text
    return {"X-API-Key": r.json()["key"]}


def audit(service, **params) -> dict:
    with service.client("admin") as c:
        r = c.get("/v1/audit", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_every_acknowledged_write_is_in_the_audit_trail_once(service, lena):
    m = {"message_id": "ops-1", "text": "my order never arrived and nobody answers"}
    with service.client("agent") as c:
        first = c.post("/v1/feedback", json={"decisions": [
            {"event_id": "ops-e1", "agent": "ana", "action": "responded", **m}]})
        assert first.status_code == 200, first.text
        assert c.post("/v1/feedback", json={"decisions": [  # a replay writes nothing and adds nothing
            {"event_id": "ops-e1", "agent": "ana", "action": "responded", **m}]}).json() == first.json()
        second = c.post("/v1/feedback", json={"decisions": [
            {"event_id": "ops-e2", "agent": "bo", "action": "marked_spam", "message_id": "ops-1"}]})
        refused = c.post("/v1/feedback", json={"decisions": [  # refused: no entry
            {"event_id": "ops-e1", "agent": "ana", "action": "archived", "archive_reason": "duplicate", **m}]})
    assert refused.status_code == 409
    [dispute_id] = second.json()["results"][0]["disputes"]
    with service.client(None) as c:
        done = c.post(f"/v1/disputes/{dispute_id}/resolve", headers=lena, json={"actionable": True, "note": "late"})
    assert done.status_code == 200, done.text

    entries = [e for e in audit(service)["entries"] if e["subject"] in ("message:ops-1", f"dispute:{dispute_id}")]
    assert [(e["kind"], e["actor"], e["role"]) for e in entries] == [
        ("decision", "ana", "agent"), ("dispute.opened", "bo", "agent"), ("decision", "bo", "agent"),
        ("label.lead", "lena", "lead"), ("dispute.resolved", "lena", "lead")]
    assert entries[0]["detail"]["event_id"] == "ops-e1" and entries[0]["detail"]["labels"]["actionable"] is True
    assert entries[2]["detail"]["disputes"] == [dispute_id]
    assert entries[4]["detail"] == {"message_id": "ops-1", "labels": {"actionable": True, "priority_tier": None,
                                                                        "crisis": None}, "note": "late"}
    # filters: a family, an actor, a time window; pages
    assert {e["kind"] for e in audit(service, kind="dispute")["entries"]} == {"dispute.opened", "dispute.resolved"}
    assert {e["actor"] for e in audit(service, actor="lena")["entries"]} == {"lena"}
    assert audit(service, since="2999-01-01")["total"] == 0 and audit(service, until="2000-01-01")["total"] == 0
    everything = audit(service, since="1h")
    page = audit(service, limit=2, offset=1)
    assert page["entries"] == everything["entries"][1:3] and page["next_offset"] == 3
    assert page["total"] == everything["total"]


@pytest.mark.parametrize(("params", "field", "fragment"), [
    ({"since": "last tuesday"}, "since", "30d, 24h or 90m"), ({"until": "7w"}, "until", "ISO date"),
    ({"kind": "coffee"}, "kind", "decision"), ({"limit": 0}, "query.limit", "greater than or equal to 1")])
def test_an_audit_query_that_does_not_parse_is_a_422_naming_the_field(service, params, field, fragment):
    with service.client("admin") as c:
        r = c.get("/v1/audit", params=params)
    assert r.status_code == 422
    [problem] = r.json()["detail"]
    assert problem["field"] == field and fragment in problem["message"]


def test_only_admins_read_the_audit_trail(service):
    for role, code in (("lead", 403), ("agent", 403), ("scorer", 403), (None, 401)):
        with service.client(role) as c:
            assert c.get("/v1/audit").status_code == code


def score_route(service, author: str) -> dict:
    with service.client("scorer") as c:
        r = c.post("/v1/score", json={"messages": [{"text": "where is my refund? third time asking",
                                                    "author": author}]})
    assert r.status_code == 200, r.text
    return r.json()["results"][0]["route"]


def test_a_map_change_through_the_api_is_live_at_the_next_request_and_in_the_history(service, lena):
    with service.client("agent") as c:
        before = c.get("/v1/routing").json()
    assert before["yaml"] == service.routing.read_text() and len(before["version"]) == 12
    mode = service.routing.stat().st_mode & 0o777
    assert score_route(service, "@serial_refunder")["action"] != "block"

    new = yaml.safe_load(before["yaml"])
    new["authors"]["block"] = ["serial_refunder"]
    text = "# blocked after the refund fraud review\n" + yaml.safe_dump(new, sort_keys=False)
    with service.client(None) as c:
        r = c.request("PUT", "/v1/routing", headers=lena, json={"yaml": text, "base_version": before["version"],
                                                                 "note": "refund fraud ring"})
        assert r.status_code == 200, r.text
        after = r.json()
        assert after["yaml"] == text and after["version"] != before["version"]
        assert score_route(service, "@serial_refunder") == {"action": "block", "team": None, "rule": "authors.block",
                                                             "approval": {"required": False, "by": None, "reasons": []}}
        assert service.routing.read_text() == text  # the file is the map: a restart keeps it
        assert service.routing.stat().st_mode & 0o777 == mode  # and keeps its permissions
        # a second edit from the old version is refused: it would undo this one unseen
        stale = c.request("PUT", "/v1/routing", headers=lena, json={"yaml": before["yaml"],
                                                                     "base_version": before["version"]})
        assert stale.status_code == 409 and after["version"] in stale.json()["detail"]
        history = c.get("/v1/routing/history", headers=lena).json()
    latest, first = history["versions"][0], history["versions"][-1]
    assert (latest["version"], latest["source"], latest["actor"], latest["note"]) == (
        after["version"], "api", "lena", "refund fraud ring")
    assert latest["previous"] == before["version"] and "+  - serial_refunder" in latest["diff"]
    shipped = EscalationMap.from_yaml(Path("serving/routing.yaml")).version  # loaded from the file at start
    assert (first["version"], first["source"], first["previous"]) == (shipped, "file", None)
    subject = f"routing:{after['version']}"
    [change] = [e for e in audit(service, kind="map.changed")["entries"] if e["subject"] == subject]
    assert change["detail"]["note"] == "refund fraud ring" and change["actor"] == "lena"


@pytest.mark.parametrize(("text", "fragment"), [
    ("rules: [{name: vip, when: {sentiment: negative}, action: respond}, {name: rest, action: ignore}]",
     "'rules.0.when.sentiment': unknown field; accepted here: crisis, actionable"),
    ("rules: [{name: rest, action: shout}]", "'rules.0.action'"),
    ("rules: [{name: crisis, when: {crisis: true}, action: escalate}]", "the last rule must have no conditions"),
    ("rules: [oops", "invalid YAML"),
    ("until: 2026-13-45\nrules: [{name: rest, action: ignore}]", "invalid YAML value (month must be in 1..12)"),
    ("[" * 5000, "YAML nested too deeply to read"),
    ("- just\n- a list", "'(top level)': Input should be a valid dictionary"),
])
def test_an_invalid_map_is_refused_with_the_field_and_the_map_in_force_stays(service, lena, text, fragment):
    with service.client(None) as c:
        before = c.get("/v1/routing", headers=lena).json()
        r = c.request("PUT", "/v1/routing", headers=lena, json={"yaml": text})
        assert r.status_code == 422
        [problem] = r.json()["detail"]
        assert problem["field"] == "yaml" and fragment in problem["message"], problem
        assert c.get("/v1/routing", headers=lena).json() == before
    assert service.routing.read_text() == before["yaml"]


def test_agents_and_scorers_may_read_the_map_but_not_change_it(service):
    for role in ("agent", "scorer"):
        with service.client(role) as c:
            current = c.get("/v1/routing")
            assert current.status_code == 200
            assert c.request("PUT", "/v1/routing", json={"yaml": current.json()["yaml"]}).status_code == 403
            assert c.get("/v1/routing/history").status_code == 403


def test_an_edit_of_the_map_file_is_followed_and_recorded_as_a_file_version(service, lena):
    spec = yaml.safe_load(service.routing.read_text())
    spec["crisis_floor"] = 0.55
    text = yaml.safe_dump(spec, sort_keys=False)
    service.routing.write_text(text)
    deadline = time.monotonic() + 30
    with service.client(None) as c:
        while c.get("/v1/routing", headers=lena).json()["yaml"] != text:
            assert time.monotonic() < deadline, "the service did not follow the file"
            time.sleep(0.1)
        while (latest := c.get("/v1/routing/history", headers=lena).json()["versions"][0])["diff"].count("0.55") < 1:
            assert time.monotonic() < deadline, "the file version was not recorded"
            time.sleep(0.1)
    assert latest["source"] == "file" and latest["actor"] is None and "+crisis_floor: 0.55" in latest["diff"]


def personal_key(service, role: str, name: str) -> dict[str, str]:
    with service.client("admin") as c:
        r = c.post("/v1/admin/keys", json={"role": role, "name": name})
    assert r.status_code == 201, r.text
    return {"X-API-Key": r.json()["key"]}


def put_probation(service, lead: dict[str, str], agent: str, until: str) -> None:
    with service.client(None) as c:
        current = c.get("/v1/routing", headers=lead).json()
        spec = yaml.safe_load(current["yaml"])
        spec["approval"]["probation"] = [{"agent": agent, "until": until}]
        r = c.request("PUT", "/v1/routing", headers=lead, json={"yaml": yaml.safe_dump(spec, sort_keys=False),
                                                                 "base_version": current["version"]})
    assert r.status_code == 200, r.text


def scored(service, message_id: str, text: str) -> dict:
    with service.client("scorer") as c:
        r = c.post("/v1/score", json={"messages": [{"message_id": message_id, "text": text}]})
    assert r.status_code == 200, r.text
    return r.json()["results"][0]


def test_a_probation_agents_reply_to_a_watch_list_message_waits_for_a_leads_sign_off(service, lena):
    nina, root = personal_key(service, "agent", "nina"), personal_key(service, "admin", "root")
    put_probation(service, lena, "nina", "2999-12-31")
    risky = scored(service, "ops-risky", "my lawyer will be in touch, your charger burned my desk")
    assert risky["route"]["approval"]["required"] and risky["route"]["approval"]["by"] == "pr"
    calm = scored(service, "ops-calm", "thanks for sorting my order out so quickly")

    with service.client(None) as c:
        draft = c.post("/v1/drafts", headers=nina, json={"event_id": "ops-d1", "message_id": "ops-risky",
                                                         "text": "Sorry to hear that, please DM us your order"})
        assert draft.status_code == 201, draft.text
        d = draft.json()
        assert (d["state"], d["agent"], d["approval"]["by"]) == ("pending", "nina", "pr")
        assert any("probation until 2999-12-31" in r for r in d["approval"]["reasons"])
        assert any(f"route '{risky['route']['rule']}' needs pr sign-off" == r for r in d["approval"]["reasons"])
        # a replay answers the same; the same event with another text is refused
        assert c.post("/v1/drafts", headers=nina, json={"event_id": "ops-d1", "message_id": "ops-risky",
                                                        "text": "Sorry to hear that, please DM us your order"}
                      ).json() == d
        assert c.post("/v1/drafts", headers=nina, json={"event_id": "ops-d1", "message_id": "ops-risky",
                                                        "text": "something else"}).status_code == 409
        # the agent cannot sign her own reply off; nor can an admin who drafted one
        assert c.post(f"/v1/drafts/{d['id']}/approve", headers=nina, json={}).status_code == 403
        own = c.post("/v1/drafts", headers=root, json={"event_id": "ops-d2", "message_id": "ops-risky",
                                                       "text": "We are on it"}).json()
        refused = c.post(f"/v1/drafts/{own['id']}/approve", headers=root, json={})
        assert refused.status_code == 403 and "own" in refused.json()["detail"]
        pending = c.get("/v1/drafts", headers=lena, params={"state": "pending"}).json()
        assert {x["id"] for x in pending["drafts"]} >= {d["id"], own["id"]}
        assert next(x for x in pending["drafts"] if x["id"] == d["id"])["message_text"].startswith("my lawyer")
        # a lead signs it off, once
        ok = c.post(f"/v1/drafts/{d['id']}/approve", headers=lena, json={"note": "fine, send it"})
        assert ok.status_code == 200 and ok.json()["state"] == "approved" and ok.json()["decided_by"] == "lena"
        assert c.post(f"/v1/drafts/{d['id']}/approve", headers=lena, json={"note": "fine, send it"}).json() == ok.json()
        again = c.post(f"/v1/drafts/{d['id']}/reject", headers=root, json={"note": "no"})
        assert again.status_code == 409 and "already approved by lena" in again.json()["detail"]
        assert c.post("/v1/drafts/999999/approve", headers=lena, json={}).status_code == 404
        # not on probation, nothing risky: approved at once
        bo = personal_key(service, "agent", "bo.t")
        quick = c.post("/v1/drafts", headers=bo, json={"event_id": "ops-d3", "message_id": calm["message_id"],
                                                       "text": "Glad we could help!"}).json()
        assert quick["state"] == "approved", (calm["route"], quick)
        assert quick["state"] == "approved" and quick["approval"] == {"required": False, "by": None, "reasons": []}
        assert c.post("/v1/drafts", headers=bo, json={"event_id": "ops-d4", "message_id": "never-scored",
                                                      "text": "hi"}).status_code == 404

        # replies: with an approved draft nothing is flagged; without one the decision is stored and flagged
        sent = c.post("/v1/feedback", headers=nina, json={"decisions": [
            {"event_id": "ops-r1", "message_id": "ops-risky", "action": "responded"}]}).json()["results"][0]
        assert sent["unapproved_reply"] is None
    scored(service, "ops-risky-2", "this is going to the BBC and my solicitor, you put my family in danger")
    with service.client(None) as c:
        blind = c.post("/v1/feedback", headers=bo, json={"decisions": [
            {"event_id": "ops-r2", "message_id": "ops-risky-2", "action": "responded"}]})
    assert blind.status_code == 200
    flagged = blind.json()["results"][0]["unapproved_reply"]
    assert flagged["required"] and flagged["by"] == "pr"
    trail = audit(service, kind="draft")["entries"] + audit(service, kind="reply")["entries"]
    assert {(e["kind"], e["actor"]) for e in trail} >= {
        ("draft.submitted", "nina"), ("draft.approved", "lena"), ("draft.submitted", "bo.t"),
        ("reply.unapproved", "bo.t")}
    assert not [e for e in trail if e["kind"] == "draft.approved" and e["actor"] in ("nina", "root")]
    assert sum(e["kind"] == "draft.approved" for e in trail) == 1  # the replayed approval added nothing
    # the agent report shows both: nina's reply signed off, bo.t's sent without the sign-off it needed
    with service.client(None) as c:
        report = c.get("/v1/reports/agents", headers=lena, params={"since": "1h"})
    assert report.status_code == 200, report.text
    rows = {r["agent"]: r for r in report.json()["agents"]}
    assert rows["nina"]["drafts"] == {"submitted": 1, "pending": 0, "approved": 1, "approved_at_once": 0,
                                      "rejected": 0}
    assert rows["nina"]["replies_without_sign_off"] == 0 and rows["bo.t"]["replies_without_sign_off"] == 1
    assert rows["bo.t"]["drafts"]["approved_at_once"] == 1
    assert report.json()["team"]["replies_without_sign_off"] >= 1


def test_the_agent_report_is_for_leads_and_its_window_must_parse(service):
    with service.client("agent") as c:
        assert c.get("/v1/reports/agents").status_code == 403
    with service.client("lead") as c:
        bad = c.get("/v1/reports/agents", params={"since": "a while"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "since"
        assert c.get("/v1/reports/agents", params={"since": "2999-01-01"}).json()["agents"] == []


@pytest.mark.parametrize(("body", "field"), [
    ({"event_id": "x", "message_id": "ops-calm", "text": ""}, "text"),
    ({"event_id": "x", "message_id": "ops-calm"}, "text"),
    ({"event_id": "x", "message_id": "ops-calm", "text": "hi", "urgent": True}, "urgent"),
])
def test_a_bad_draft_is_a_422_naming_the_field(service, body, field):
    with service.client("agent") as c:
        r = c.post("/v1/drafts", json={**body, "agent": "ana"})
    assert r.status_code == 422
    assert field in [p["field"] for p in r.json()["detail"]]


def test_a_map_whose_approval_names_an_unknown_rule_is_refused(service, lena):
    with service.client(None) as c:
        spec = yaml.safe_load(c.get("/v1/routing", headers=lena).json()["yaml"])
        spec["approval"]["routes"]["vip customer"] = "lead"
        r = c.request("PUT", "/v1/routing", headers=lena, json={"yaml": yaml.safe_dump(spec)})
    assert r.status_code == 422
    message = r.json()["detail"][0]["message"]
    assert "approval.routes: no rule is named 'vip customer'; use a rule's name: " in message
    assert "crisis, sensitive topic, tier 1" in message


def test_a_follow_up_gets_its_context_and_a_repeat_contact_rule_routes_it(service, lena):
    from datetime import UTC, datetime, timedelta

    earlier = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    first = {"message_id": "ctx-1", "text": "my router has been down since Monday", "author": "@rita",
             "conversation_id": "ctx-conv", "created_at": earlier}
    with service.client("scorer") as c:
        assert c.post("/v1/score", json={"messages": [first]}).status_code == 200
    with service.client("agent") as c:  # escalated to a lead, not answered yet: the case is open
        assert c.post("/v1/feedback", json={"decisions": [{"event_id": "ctx-e1", "message_id": "ctx-1", "agent": "ana",
                                                            "action": "escalated", "team": "lead"}]}).status_code == 200
    follow_up = {"text": "any news? still no internet", "author": "@rita", "conversation_id": "ctx-conv"}
    with service.client("scorer") as c:
        result = c.post("/v1/score", json={"messages": [follow_up]}).json()["results"][0]
    conversation, customer = result["context"]["conversation"], result["context"]["customer"]
    assert conversation["turns_seen"] == 1 and conversation["open_case"] is True
    assert conversation["last_decision"]["action"] == "escalated" and conversation["last_decision"]["agent"] == "ana"
    assert customer["repeat_contact"] is True and customer["messages_30d"] == 1
    assert (customer["last_agent"], customer["last_outcome"]) == ("ana", "escalated")

    with service.client(None) as c:  # a lead routes repeat contacts to the senior desk
        current = c.get("/v1/routing", headers=lena).json()
        spec = yaml.safe_load(current["yaml"])
        spec["rules"].insert(0, {"name": "repeat contact", "when": {"repeat_contact": True, "crisis": False},
                                 "action": "respond", "team": "senior"})
        assert c.request("PUT", "/v1/routing", headers=lena, json={"yaml": yaml.safe_dump(spec, sort_keys=False),
                                                                    "base_version": current["version"]}
                         ).status_code == 200
    with service.client("scorer") as c:
        routed = c.post("/v1/score", json={"messages": [follow_up]}).json()["results"][0]
        stranger = c.post("/v1/score", json={"messages": [{**follow_up, "author": "@new", "conversation_id": "n"}]}
                          ).json()["results"][0]
    assert (routed["route"]["rule"], routed["route"]["team"]) == ("repeat contact", "senior")
    assert "routed by 'repeat contact' on context: repeat contact within 24 h" in routed["explanation"]["summary"]
    assert stranger["route"]["rule"] != "repeat contact" and stranger["context"]["customer"]["messages_90d"] == 0


def test_an_admin_erases_a_customer_and_the_audit_trail_says_so_without_the_handle(service):
    with service.client("scorer") as c:
        c.post("/v1/score", json={"messages": [{"message_id": "gdpr-1", "text": "I'm Hana, my order 991 is late",
                                                "author": "@hana_k"}]}).raise_for_status()
    with service.client("lead") as c:
        assert c.delete("/v1/authors/@hana_k").status_code == 403
    with service.client("admin") as c:
        erased = c.delete("/v1/authors/hana_k")
        assert erased.status_code == 200, erased.text
        assert erased.json() == {"messages": 1, "predictions": 1, "decisions": 0, "drafts": 0}
        assert c.delete("/v1/authors/hana_k").json()["messages"] == 0  # already erased
    [entry] = [e for e in audit(service, kind="erasure")["entries"] if e["detail"]["reason"] == "request"][:1]
    assert entry["subject"].startswith("author:sha256:") and "hana" not in str(entry).lower()
