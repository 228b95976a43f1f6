"""Issue 19, findings 3-5, against the real service: a flood of near-identical actionable messages for one
brand (memory and work of the spike watcher must not grow with how alike they are), and timestamps from
the future (refused, so they can neither silence the alerts nor break /v1/alerts and /metrics).

The flood here is as large as fits about a minute of scoring on a 2-core machine; ``benchmarks/spikes.py``
sends the probe's full 20,000 and prints the figures."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.abuse.conftest import process_memory_mb
from tests.integration.service_fixtures import RunningService, alerts, wait_for
from triage_ml.benchmark.spikes import ALIKE, alike_burst

pytestmark = pytest.mark.integration
FLOOD = 3_000
BATCH = 256  # the service's max_batch: the largest request it takes


def post(service: RunningService, rows: list[dict]) -> list[dict]:
    with service.client("scorer") as c:
        r = c.post("/v1/score", json={"messages": rows})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def cluster_alert(service: RunningService, brand: str, timeout: float = 60) -> dict | None:
    """``brand``'s cluster alert once /v1/alerts shows it; None if it does not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [a for a in alerts(service)["alerts"] if (a["brand"], a["kind"]) == (brand, "cluster")]
        if found:
            return found[0]
        time.sleep(0.3)
    return None


def flood(service: RunningService, brand: str, count: int, start: datetime, seconds: float) -> tuple[int, datetime]:
    """The alike burst for ``brand`` in requests of BATCH. Returns how many the model found actionable, and
    the last one's time."""
    actionable = 0
    for rows in alike_burst(brand, count, start, seconds, BATCH):
        actionable += sum(r["actionable"] for r in post(service, rows))
    return actionable, datetime.fromisoformat(rows[-1]["created_at"])


def test_a_flood_of_alike_messages_keeps_memory_flat_and_raises_the_alert(service):
    pid = service.proc.pid
    now = datetime.now(UTC)
    _, warm = flood(service, "warm-up", BATCH, now - timedelta(minutes=30), 60)  # the model's first-batch memory
    wait_for(service, warm)
    start_mb = process_memory_mb(pid)
    began = time.perf_counter()
    actionable, last = flood(service, "Nordtel", FLOOD, now - timedelta(minutes=10), 590)  # one burst
    cluster: list[dict] = []
    try:
        seen = wait_for(service, last)["alerts"]
        cluster = [a for a in seen if (a["brand"], a["kind"]) == ("Nordtel", "cluster")]
    finally:
        seconds = time.perf_counter() - began
        end_mb, peak_mb = process_memory_mb(pid), process_memory_mb(pid, "VmHWM")
        print(f"\n{FLOOD:,} alike messages ({actionable:,} actionable), watched in {seconds:.1f} s: server VmRSS "
              f"{start_mb:.0f} -> {end_mb:.0f} MB (peak {peak_mb:.0f} MB); cluster alert "
              f"{cluster[0]['value'] if cluster else None}")
    assert actionable >= 0.9 * FLOOD, f"only {actionable} of {FLOOD} were actionable: the flood tests nothing"
    assert end_mb - start_mb < 200, f"server memory grew {end_mb - start_mb:.0f} MB over the flood"
    assert cluster and cluster[0]["value"] >= 0.9 * actionable, cluster
    assert all(e["text"].startswith("@Nordtel no signal") for e in cluster[0]["examples"])


def test_a_message_from_the_future_is_refused_and_cannot_silence_a_burst(service):
    now = datetime.now(UTC)
    for future in ("2199-01-01T00:00:00Z", "9999-12-31T23:59:59-12:00", (now + timedelta(days=2)).isoformat()):
        rows = [{"text": ALIKE.format(1), "brand": "Munchly"}, {"text": ALIKE.format(2), "brand": "Munchly",
                                                                 "created_at": future}]
        with service.client("scorer") as c:
            r = c.post("/v1/score", json={"messages": rows})
        assert r.status_code == 422, r.text
        [problem] = r.json()["detail"]
        assert problem["field"] == "messages.1.created_at", problem
        assert "ahead of" in problem["message"] and "TRIAGE_MAX_CLOCK_SKEW_SECONDS" in problem["message"], problem
    flood(service, "Skylark", 20, now - timedelta(minutes=5), 240)  # a burst after the refusals
    cluster = cluster_alert(service, "Skylark")
    assert cluster and cluster["value"] >= 6, cluster
    assert datetime.fromisoformat(alerts(service)["as_of"]) <= datetime.now(UTC) + timedelta(minutes=5)
    with service.client(None) as c:
        assert 'triage_spike_active{brand="Skylark",kind="cluster"} 1.0' in c.get("/metrics").text
