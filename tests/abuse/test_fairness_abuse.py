"""Finding 8 of the abuse probe: one caller must not stall everyone. Callers take turns at the encoder,
and each key is rate-limited (429 with Retry-After)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.integration.service_fixtures import KEYS

pytestmark = pytest.mark.integration
LONG = ("my order arrived broken and nobody answers the phone, this is the third time I write about it; " * 12)[:1200]


def test_a_small_request_is_answered_while_another_callers_large_batch_runs(start_service):
    # the bulk caller and the small caller hold different keys (scorer and admin); no rate limit here
    service = start_service(TRIAGE_RATE_LIMIT="100000/minute")
    bulk = {"messages": [{"text": f"{i} {LONG}"} for i in range(128)]}  # four turns at the encoder
    timings: dict[str, float] = {}

    def send_bulk() -> None:
        start = time.monotonic()
        with service.client("scorer") as c:
            assert c.post("/v1/score", json=bulk, timeout=300).status_code == 200
        timings["bulk"] = time.monotonic() - start

    with service.client("admin") as c:  # warm: the first request loads lazily built parts
        assert c.post("/v1/score", json={"messages": [{"text": "warm up"}]}).status_code == 200
    worker = threading.Thread(target=send_bulk)
    worker.start()
    time.sleep(1.0)  # the bulk request is being encoded
    start = time.monotonic()
    with service.client("admin") as c:
        r = c.post("/v1/score", json={"messages": [{"text": "@brand my card was charged twice, please help"}]},
                   timeout=300)
    timings["small"] = time.monotonic() - start
    worker.join()
    assert r.status_code == 200
    print(f"small request {timings['small']:.2f} s while the bulk request took {timings['bulk']:.2f} s")
    # before turns were taken, the small request waited for all the long messages (22 s in the probe)
    assert "bulk" in timings and timings["small"] < timings["bulk"] / 2, timings


def test_a_key_past_its_rate_gets_429_with_retry_after_and_other_keys_are_served(start_service):
    service = start_service(TRIAGE_RATE_LIMIT="5/minute")
    body = {"messages": [{"text": "hello"}]}
    with httpx.Client(base_url=service.url, timeout=60) as c:
        codes = [c.post("/v1/score", json=body, headers={"X-API-Key": KEYS["scorer"]}).status_code
                 for _ in range(7)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
        r = c.post("/v1/score", json=body, headers={"X-API-Key": KEYS["scorer"]})
        assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
        assert "5 per 1 minute" in r.json()["detail"]
        assert c.post("/v1/score", json=body, headers={"X-API-Key": KEYS["admin"]}).status_code == 200
        # an unknown key is refused as unknown, and does not spend anyone's allowance
        assert c.post("/v1/score", json=body, headers={"X-API-Key": "guess"}).status_code == 401
