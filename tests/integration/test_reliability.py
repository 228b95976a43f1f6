"""Nothing lost, nothing doubled: about a thousand decisions and reply drafts from 32 concurrent clients over
loopback, with replays, two leads racing to sign off every pending draft, and a server killed with SIGKILL in
the middle of the load; the audit trail holds one entry per acknowledged write. On SQLite and on PostgreSQL.
``TRIAGE_TEST_LOAD_SCALE`` multiplies the number of decisions (the README's table: scale 1)."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from tests.integration.service_fixtures import KEYS, RunningService
from triage_ml.labels.decisions import Decision
from triage_ml.store.db import Store
from triage_ml.store.tables import AuditRow, DecisionRow, DraftRow, LabelRow

pytestmark = pytest.mark.integration
SCALE = float(os.environ.get("TRIAGE_TEST_LOAD_SCALE", "1"))
ACTIONS = [{"action": "responded"}, {"action": "escalated", "team": "lead"}, {"action": "escalated", "team": "pr"},
           {"action": "archived", "archive_reason": "no_action_needed", "reason": "praise"},
           {"action": "marked_spam"}, {"action": "blocked"}, {"action": "set_priority", "priority_tier": 2},
           {"action": "flag_crisis"}, {"action": "unflag_crisis"}]


TEXT = "thanks, all sorted now"  # a reply to it needs no sign-off unless its agent is on probation
PROBATION = [f"agent-{i}" for i in range(4)]  # their drafts wait for a lead's sign-off


def make_load(n_distinct: int, replay_share: float, seed: int, *, drafts: int = 0) -> list[dict]:
    """Decisions by 12 agents on a third as many messages as events (so most messages get decisions from
    several agents, some at the same moment), and ``drafts`` reply drafts among them; ``replay_share`` of the
    sends repeat an earlier one."""
    rng = random.Random(seed)
    messages = max(n_distinct // 3, 1)
    events: list[dict] = [{"event_id": f"evt-{seed}-{i}", "message_id": f"msg-{rng.randrange(messages)}",
                           "agent": f"agent-{rng.randrange(12)}", "text": TEXT, **rng.choice(ACTIONS)}
                          for i in range(n_distinct)]
    for i in range(drafts):
        at = rng.randrange(len(events) + 1)
        events.insert(at, {"path": "/v1/drafts", "role": "agent", "id": f"draft-{seed}-{i}", "json": {
            "event_id": f"draft-{seed}-{i}", "message_id": f"msg-{rng.randrange(messages)}",
            "agent": f"agent-{rng.randrange(12)}", "text": f"reply number {i}"}})
    return with_replays(events, replay_share, rng)


def with_replays(events: list[dict], replay_share: float, rng: random.Random) -> list[dict]:
    sends = list(events)
    for _ in range(round(len(events) * replay_share / (1 - replay_share))):
        at = rng.randrange(1, len(sends))
        sends.insert(at, rng.choice(sends[:at]))
    return sends


def start_service(settings, tmp_path, database_url: str, messages: int) -> RunningService:
    """The service with some agents on probation, and the load's messages scored (a draft needs its message's
    route)."""
    service = RunningService(settings, tmp_path, TRIAGE_MODEL_POLL_SECONDS="0", TRIAGE_DATABASE_URL=database_url)
    service.routing.write_text(service.routing.read_text().replace("probation: []", "probation: [" + ", ".join(
        f"{{agent: {a}, until: 2999-12-31}}" for a in PROBATION) + "]"))
    service.start()
    with service.client("scorer") as c:
        for start in range(0, messages, 200):
            c.post("/v1/score", json={"messages": [{"message_id": f"msg-{m}", "text": TEXT}
                                                   for m in range(start, min(start + 200, messages))]}
                   ).raise_for_status()
    return service


def verdicts(service, seed: int, replay_share: float) -> list[dict]:
    """For every pending draft, an approval by one lead and a rejection by another, racing; with replays."""
    rng = random.Random(seed)
    pending, offset = [], 0
    with service.client("lead") as c:
        while offset is not None:
            page = c.get("/v1/drafts", params={"state": "pending", "limit": 100, "offset": offset}).json()
            pending += [d["id"] for d in page["drafts"]]
            offset = page["next_offset"]
    sends = [{"path": f"/v1/drafts/{d}/{verb}", "role": "lead", "id": f"{verb}-{d}", "json": {"lead": lead}}
             for d in pending for verb, lead in (("approve", "lead-a"), ("reject", "lead-b"))]
    rng.shuffle(sends)
    return with_replays(sends, replay_share, rng)


def request_of(send: dict) -> tuple[str, str, dict, str]:
    """(path, role, body, idempotency id) of a send: an agent decision (the default), a draft, or a verdict."""
    if "path" in send:
        return send["path"], send["role"], send["json"], send["id"]
    return "/v1/feedback", "agent", {"decisions": [send]}, send["event_id"]


def fire(url: str, sends: list[dict], clients: int, deadline: float, *, acked: dict[str, str] | None = None,
         stop_after: int | None = None, on_count: threading.Event | None = None) -> dict:
    """Send each request until it is answered (connection errors and 5xx are retried, as a client would).
    ``acked`` (idempotency id -> answer) fills as answers arrive; a verdict may lose its race (409)."""
    acked = {} if acked is None else acked
    lock = threading.Lock()
    errors = Counter()
    queue = iter(list(enumerate(sends)))

    def worker() -> None:
        clients_by_role = {role: httpx.Client(base_url=url, headers={"X-API-Key": KEYS[role]}, timeout=30)
                           for role in ("agent", "lead")}
        try:
            while True:
                with lock:
                    item = next(queue, None)
                if item is None:
                    return
                path, role, body, key = request_of(item[1])
                while True:
                    if time.monotonic() > deadline:
                        raise TimeoutError("load did not finish in time")
                    try:
                        r = clients_by_role[role].post(path, json=body)
                    except httpx.TransportError:
                        errors["transport"] += 1
                        time.sleep(0.2)
                        continue
                    if r.status_code >= 500 or r.status_code == 429:  # a client retries these (429: when told)
                        errors[str(r.status_code)] += 1
                        time.sleep(float(r.headers.get("Retry-After", 0.2)))
                        continue
                    verdict = "/approve" in path or "/reject" in path
                    assert r.status_code in ((200, 409) if verdict else (200, 201)), r.text  # 409: lost the race
                    answer = json.dumps([r.status_code, r.json()], sort_keys=True)
                    with lock:
                        first = acked.setdefault(key, answer)
                        assert first == answer, f"{key}: a replay answered differently"
                        if stop_after is not None and len(acked) >= stop_after and on_count is not None:
                            on_count.set()
                    break
        finally:
            for c in clients_by_role.values():
                c.close()

    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(worker) for _ in range(clients)]:
            f.result()
    return {"acked": acked, "errors": dict(errors)}


class Load:
    """``fire`` running in the background while the test does something else (kills the server). When the load
    fails, its own error (a worker's assertion, its deadline) is what the test raises."""

    def __init__(self, url: str, sends: list[dict], *, clients: int, seconds: float, stop_after: int) -> None:
        self.acked: dict[str, str] = {}
        self.reached = threading.Event()  # ``stop_after`` decisions were acknowledged
        self._pool = ThreadPoolExecutor(1)
        self._future = self._pool.submit(fire, url, sends, clients, time.monotonic() + seconds, acked=self.acked,
                                         stop_after=stop_after, on_count=self.reached)
        self._pool.shutdown(wait=False)

    def wait_until_reached(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.reached.wait(0.2):
            if self._future.done():
                self._future.result()  # the load's own error
                raise AssertionError(f"the load ended with {len(self.acked)} acknowledged, before its count")
            assert time.monotonic() < deadline, f"the load did not reach its count in {timeout} s"

    def result(self, timeout: float) -> dict:
        """Once the load is done: ``fire``'s answer, or the load's own error."""
        return self._future.result(timeout)


def check_store(url: str, sends: list[dict], acked: dict[str, str]) -> dict:
    """Every acknowledged decision and draft stored once, with its labels; every draft decided at most once, by
    the verdict that was answered 200; the audit trail holds one entry per acknowledged write."""
    distinct = {e["event_id"]: e for e in sends if "path" not in e}
    drafts_sent = {e["id"] for e in sends if e.get("path") == "/v1/drafts"}
    store = Store(url, auto_migrate=False)
    try:
        with store.session() as s:
            stored = Counter(s.scalars(select(DecisionRow.event_id)).all())
            labels = s.execute(select(DecisionRow.event_id, LabelRow.head, LabelRow.value)
                               .join(LabelRow, LabelRow.decision_id == DecisionRow.id)).all()
            drafts = {d.event_id: d for d in s.scalars(select(DraftRow))}
            entries = s.execute(select(AuditRow.kind, AuditRow.subject, AuditRow.detail)).all()
    finally:
        store.dispose()
    duplicates = sum(n - 1 for n in stored.values())
    missing = [e for e in acked if e in distinct and e not in stored]
    expected = {(eid, head, value) for eid, e in distinct.items()
                for head, value in Decision.model_validate({k: v for k, v in e.items()}).labels().items()}
    got = Counter(labels)
    report = {"sent": len(sends), "distinct": len(distinct), "acknowledged": len(acked), "stored": len(stored),
              "duplicates": duplicates, "missing_acknowledged": len(missing)}
    assert duplicates == 0 and not missing
    assert set(stored) == set(distinct)
    assert set(got) == expected and all(n == 1 for n in got.values())
    # the audit trail: one `decision` entry per stored decision, one `draft.submitted` per draft, one verdict
    # entry per decided draft, and nothing else for them
    kinds = Counter(kind for kind, _, _ in entries)
    assert Counter(d["event_id"] for kind, _, d in entries if kind == "decision") == Counter(set(stored))
    assert kinds["draft.submitted"] == len(drafts) and set(drafts) == drafts_sent
    decided = {int(subject.split(":")[1]): kind for kind, subject, _ in entries if kind in ("draft.approved",
                                                                                             "draft.rejected")}
    assert kinds["draft.approved"] + kinds["draft.rejected"] == len(decided)  # never decided twice
    for draft in drafts.values():
        assert decided.get(draft.id) == (None if draft.decided_by is None else f"draft.{draft.state}")
        won = [k for k in (f"approve-{draft.id}", f"reject-{draft.id}") if json.loads(acked.get(k, "[0]"))[0] == 200]
        if draft.decided_by is not None and won:  # the verdict answered 200 is the one stored
            assert won == [f"{'approve' if draft.state == 'approved' else 'reject'}-{draft.id}"]
    report.update(drafts=len(drafts), pending=sum(d.state == "pending" for d in drafts.values()),
                  approved_at_once=sum(d.state == "approved" and d.decided_by is None for d in drafts.values()),
                  decided_by_a_lead=len(decided), audit_entries=sum(kinds.values()))
    return report


def test_concurrent_decisions_drafts_and_sign_offs_with_replays(trained_store, database_url, tmp_path):
    settings, _ = trained_store
    n = round(900 * SCALE)
    sends = make_load(n, 0.1, seed=1, drafts=n // 6)  # 1,167 sends: 900 decisions, 150 drafts, 117 replays
    service = start_service(settings, tmp_path, database_url, n // 3)
    try:
        start = time.monotonic()
        outcome = fire(service.url, sends, clients=32, deadline=time.monotonic() + 600)
        elapsed = time.monotonic() - start
        signing = verdicts(service, seed=1, replay_share=0.1)  # two leads race on every pending draft
        signed = fire(service.url, signing, clients=32, deadline=time.monotonic() + 600)
    finally:
        service.stop()
    report = check_store(database_url, sends + signing, outcome["acked"] | signed["acked"])
    assert report["pending"] == 0 and report["decided_by_a_lead"] > 0  # every pending draft was decided, once
    report.update(errors=outcome["errors"], seconds=round(elapsed, 1), backend=database_url.split(":")[0],
                  verdicts_sent=len(signing))
    print("\nRELIABILITY concurrency", json.dumps(report))


def test_sigkill_in_the_middle_of_the_load(trained_store, database_url, tmp_path):
    settings, _ = trained_store
    n = round(720 * SCALE)
    sends = make_load(n, 0.1, seed=2, drafts=n // 6)  # 933 sends: 720 decisions, 120 drafts, 93 replays
    service = start_service(settings, tmp_path, database_url, n // 3)
    load = Load(service.url, sends, clients=32, seconds=600, stop_after=len(sends) // 3)
    try:
        load.wait_until_reached(300)  # a third acknowledged
        os.kill(service.proc.pid, signal.SIGKILL)
        service.proc.wait(30)
        killed_at = len(load.acked)
        service.start()  # same port, same database; clients retry what was not acknowledged
        result = load.result(600)
    finally:
        service.stop()
    report = check_store(database_url, sends, result["acked"])
    report.update(errors=result["errors"], killed_after_acks=killed_at, backend=database_url.split(":")[0])
    assert sum(result["errors"].values()) > 0  # the kill was felt by the clients
    print("\nRELIABILITY sigkill", json.dumps(report))


def test_a_load_that_fails_says_why():
    """The load's own error reaches the test (here its deadline, already past: nothing is sent), never a
    KeyError on the result it did not leave."""
    load = Load("http://127.0.0.1:9", make_load(20, 0.0, seed=3), clients=2, seconds=-1, stop_after=10)
    with pytest.raises(TimeoutError, match="load did not finish in time"):
        load.wait_until_reached(30)
    with pytest.raises(TimeoutError, match="load did not finish in time"):
        load.result(30)
