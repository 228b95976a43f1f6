"""Nothing lost, nothing doubled: about a thousand decisions from 32 concurrent clients over loopback, with
replays, and a server killed with SIGKILL in the middle of the load. On SQLite and on PostgreSQL.
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
from triage_ml.store.tables import DecisionRow, LabelRow

pytestmark = pytest.mark.integration
SCALE = float(os.environ.get("TRIAGE_TEST_LOAD_SCALE", "1"))
ACTIONS = [{"action": "responded"}, {"action": "escalated", "team": "lead"}, {"action": "escalated", "team": "pr"},
           {"action": "archived", "archive_reason": "no_action_needed", "reason": "praise"},
           {"action": "marked_spam"}, {"action": "blocked"}, {"action": "set_priority", "priority_tier": 2},
           {"action": "flag_crisis"}, {"action": "unflag_crisis"}]


def make_load(n_distinct: int, replay_share: float, seed: int) -> list[dict]:
    """Decisions by 12 agents on a third as many messages as events (so most messages get decisions from
    several agents, some at the same moment); ``replay_share`` of the sends repeat an earlier event."""
    rng = random.Random(seed)
    messages = max(n_distinct // 3, 1)
    events = [{"event_id": f"evt-{seed}-{i}", "message_id": f"msg-{rng.randrange(messages)}",
               "agent": f"agent-{rng.randrange(12)}", "text": "a message from the load test", **rng.choice(ACTIONS)}
              for i in range(n_distinct)]
    sends = list(events)
    for _ in range(round(n_distinct * replay_share / (1 - replay_share))):
        at = rng.randrange(1, len(sends))
        sends.insert(at, rng.choice(sends[:at]))
    return sends


def fire(url: str, sends: list[dict], clients: int, deadline: float, *, acked: dict[str, str] | None = None,
         stop_after: int | None = None, on_count: threading.Event | None = None) -> dict:
    """Send each decision until acknowledged (connection errors and 5xx are retried, as a client would).
    ``acked`` (event id -> response) fills as answers arrive."""
    acked = {} if acked is None else acked
    lock = threading.Lock()
    errors = Counter()
    queue = iter(list(enumerate(sends)))

    def worker() -> None:
        with httpx.Client(base_url=url, headers={"X-API-Key": KEYS["agent"]}, timeout=30) as c:
            while True:
                with lock:
                    item = next(queue, None)
                if item is None:
                    return
                _, event = item
                while True:
                    if time.monotonic() > deadline:
                        raise TimeoutError("load did not finish in time")
                    try:
                        r = c.post("/v1/feedback", json={"decisions": [event]})
                    except httpx.TransportError:
                        errors["transport"] += 1
                        time.sleep(0.2)
                        continue
                    if r.status_code >= 500 or r.status_code == 429:  # a client retries these (429: when told)
                        errors[str(r.status_code)] += 1
                        time.sleep(float(r.headers.get("Retry-After", 0.2)))
                        continue
                    assert r.status_code == 200, r.text
                    body = json.dumps(r.json(), sort_keys=True)
                    with lock:
                        first = acked.setdefault(event["event_id"], body)
                        assert first == body, f"{event['event_id']}: a replay answered differently"
                        if stop_after is not None and len(acked) >= stop_after and on_count is not None:
                            on_count.set()
                    break

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
    distinct = {e["event_id"]: e for e in sends}
    store = Store(url, auto_migrate=False)
    try:
        with store.session() as s:
            stored = Counter(s.scalars(select(DecisionRow.event_id)).all())
            labels = s.execute(select(DecisionRow.event_id, LabelRow.head, LabelRow.value)
                               .join(LabelRow, LabelRow.decision_id == DecisionRow.id)).all()
    finally:
        store.dispose()
    duplicates = sum(n - 1 for n in stored.values())
    missing = [e for e in acked if e not in stored]
    expected = {(eid, head, value) for eid, e in distinct.items()
                for head, value in Decision.model_validate({k: v for k, v in e.items()}).labels().items()}
    got = Counter(labels)
    report = {"sent": len(sends), "distinct": len(distinct), "acknowledged": len(acked), "stored": len(stored),
              "duplicates": duplicates, "missing_acknowledged": len(missing)}
    assert duplicates == 0 and not missing
    assert set(stored) == set(distinct)
    assert set(got) == expected and all(n == 1 for n in got.values())
    return report


def test_concurrent_decisions_with_replays(trained_store, database_url, tmp_path):
    settings, _ = trained_store
    sends = make_load(round(900 * SCALE), 0.1, seed=1)  # 1,000 sends, 100 of them replays
    service = RunningService(settings, tmp_path, TRIAGE_MODEL_POLL_SECONDS="0", TRIAGE_DATABASE_URL=database_url)
    service.start()
    try:
        start = time.monotonic()
        outcome = fire(service.url, sends, clients=32, deadline=time.monotonic() + 600)
        elapsed = time.monotonic() - start
    finally:
        service.stop()
    report = check_store(database_url, sends, outcome["acked"])
    report.update(errors=outcome["errors"], seconds=round(elapsed, 1), backend=database_url.split(":")[0])
    print("\nRELIABILITY concurrency", json.dumps(report))


def test_sigkill_in_the_middle_of_the_load(trained_store, database_url, tmp_path):
    settings, _ = trained_store
    sends = make_load(round(720 * SCALE), 0.1, seed=2)  # 800 sends
    service = RunningService(settings, tmp_path, TRIAGE_MODEL_POLL_SECONDS="0", TRIAGE_DATABASE_URL=database_url)
    service.start()
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
