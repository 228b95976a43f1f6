"""Spike alerts on replayed traffic: a brand's ordinary day, with an outage burst in the middle.

Normal traffic is the seed set's actionable messages for one brand, replayed one every 90 s (about ten per
15-minute window); the burst is 20 differently worded outage reports within 8 minutes. Embeddings are the
real encoder's; crisis risk is the seed label's (0.9 for a crisis, 0.05 otherwise).
"""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from triage_ml.monitoring.spikes import Alert, SpikeConfig, SpikeDetector

BURST = (Path(__file__).parents[1] / "data" / "outage_burst.txt").read_text().splitlines()
START = 1_780_000_000.0  # 2026-05-28, any fixed time


@pytest.fixture(scope="module")
def traffic(seed, encoder):
    normal = seed[(seed["brand"] == "Nordtel") & (seed["actionable"] == True)]  # noqa: E712
    texts = normal["text"].tolist()
    vectors = encoder.encode(texts)
    risks = np.where(normal["crisis"].fillna(False).astype(bool), 0.9, 0.05)
    return texts, vectors, risks, encoder.encode(BURST)


def replay(detector: SpikeDetector, traffic, burst_at: int | None):
    """Feed normal traffic (one message every 90 s) with the burst inserted after message ``burst_at``.
    Returns the alerts active after each message, with the message's kind (normal/burst)."""
    texts, vectors, risks, burst_vectors = traffic
    t, seen = START, []
    for i, (text, vector, risk) in enumerate(zip(texts, vectors, risks, strict=True)):
        t += 90
        detector.observe("Nordtel", t, vector, risk, actionable=True, message_id=f"n{i}", text=text)
        seen.append(("normal", {a["kind"] for a in detector.active()}))
        if i == burst_at:
            for j, (text_b, vector_b) in enumerate(zip(BURST, burst_vectors, strict=True)):
                t += 24  # 20 reports in 8 minutes
                detector.observe("Nordtel", t, vector_b, 0.1, actionable=True, message_id=f"b{j}", text=text_b)
                seen.append(("burst", {a["kind"] for a in detector.active()}))
    return seen


def test_normal_traffic_raises_nothing(traffic):
    seen = replay(SpikeDetector(), traffic, burst_at=None)
    assert len(seen) == 90  # the seed's actionable Nordtel messages: 2 h 15 min of traffic
    assert all(not kinds for _, kinds in seen)


def test_an_outage_burst_fires_within_the_burst_and_ends_after_it(traffic):
    detector = SpikeDetector()
    seen = replay(detector, traffic, burst_at=50)
    before = [kinds for kind, kinds in seen[:51]]
    during = [kinds for kind, kinds in seen if kind == "burst"]
    assert all(not k for k in before)
    fired = next(i for i, k in enumerate(during) if "cluster" in k)
    assert fired < 10, f"the cluster alert came only after {fired + 1} of {len(BURST)} burst messages"
    assert all("cluster" in k for k in during[fired:])
    after = [kinds for _, kinds in seen[51 + len(BURST) + 12:]]  # 12 normal messages = 18 min later
    assert after and all("cluster" not in k for k in after)


def test_the_alert_shows_the_burst_and_the_baseline(traffic):
    detector = SpikeDetector()
    texts, vectors, risks, burst_vectors = traffic
    t = START
    for text, vector, risk in zip(texts[:60], vectors[:60], risks[:60], strict=True):
        t += 90
        detector.observe("Nordtel", t, vector, risk, actionable=True, text=text)
    for j, vector in enumerate(burst_vectors):
        detector.observe("Nordtel", t + 24 * (j + 1), vector, 0.1, actionable=True, message_id=f"b{j}", text=BURST[j])
    [alert] = [a for a in detector.active() if a["kind"] == "cluster"]
    assert alert["brand"] == "Nordtel" and alert["value"] >= 10
    assert alert["baseline"] < alert["threshold"] <= alert["value"]
    assert all(e["text"] in BURST for e in alert["examples"]) and len(alert["examples"]) == 3


def test_crisis_pile_up_and_noise_and_brands_are_kept_apart(traffic):
    texts, vectors, _, _ = traffic
    detector = SpikeDetector(SpikeConfig(min_cluster=50))  # only the crisis signal can fire here
    t = START
    for i in range(40):
        t += 90
        detector.observe("Nordtel", t, vectors[i], 0.05, actionable=True, text=texts[i])
        # noise never enters the window, however risky it looks
        detector.observe("Nordtel", t + 1, vectors[i], 0.99, actionable=False, text=texts[i])
    assert not detector.active()
    for i in range(6):  # six messages the crisis head is sure about, within a few minutes
        detector.observe("Nordtel", t + 30 * (i + 1), vectors[40 + i], 0.95, actionable=True, text=texts[40 + i])
        detector.observe("Munchly", t + 30 * (i + 1), vectors[40 + i], 0.05, actionable=True, text=texts[40 + i])
    alerts = detector.active()
    assert [(a["brand"], a["kind"]) for a in alerts] == [("Nordtel", "crisis")]
    assert alerts[0]["value"] >= 4.0 and alerts[0]["examples"][0]["crisis_risk"] == 0.95


# -- bounded memory and work, however alike the traffic (issue 19, finding 3) -----------------------------
def alike(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors around one direction (pairwise cosine about 0.96): one problem, reworded."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=dim)
    vectors = base + 0.2 * rng.normal(size=(n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def unrelated(n: int, dim: int = 384, seed: int = 1) -> np.ndarray:
    """``n`` random unit vectors: no two about the same thing."""
    vectors = np.random.default_rng(seed).normal(size=(n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_twenty_thousand_alike_messages_keep_memory_bounded_and_raise_one_alert():
    detector = SpikeDetector()
    tracemalloc.start()
    try:
        for i, vector in enumerate(alike(20_000)):  # one burst: 20,000 messages in 10 minutes
            detector.observe("Nordtel", START + i * 0.03, vector, 0.0, actionable=True, message_id=f"m{i}",
                             text=f"no signal anywhere in Leeds since 9am, ticket {i}")
            if i == 999:
                settled = tracemalloc.get_traced_memory()[0]
            elif i % 1000 == 999:
                grown = tracemalloc.get_traced_memory()[0] - settled
                assert grown < 1_000_000, f"{grown / 1e6:.1f} MB more after {i + 1:,} messages than after 1,000"
    finally:
        tracemalloc.stop()
    stored = detector.stored()
    assert stored["brands"] == 1 and stored["clusters"] == 1, stored
    assert stored["examples"] <= detector.config.examples * (detector.config.buckets + 2), stored
    [alert] = detector.active()
    assert (alert["brand"], alert["kind"], alert["value"]) == ("Nordtel", "cluster", 20_000)
    assert [e["message_id"] for e in alert["examples"]] == ["m19999", "m19998", "m19997"]


def test_work_per_message_is_bounded_however_varied_the_traffic():
    config = SpikeConfig(max_clusters=32)
    detector = SpikeDetector(config)
    for i, vector in enumerate(unrelated(5_000)):  # each message unlike any other: a new cluster each time
        before = detector.comparisons
        detector.observe("Nordtel", START + i * 0.1, vector, 0.0, actionable=True, text=f"message {i}")
        assert detector.comparisons - before <= config.max_clusters
    assert detector.stored()["clusters"] == config.max_clusters
    for i, vector in enumerate(alike(8), start=5_000):  # a burst still forms among them
        detector.observe("Nordtel", START + i * 0.1, vector, 0.0, actionable=True, text=f"outage {i}")
    [alert] = detector.active()
    assert alert["kind"] == "cluster" and alert["value"] == 8
    assert all(e["text"].startswith("outage") for e in alert["examples"])


def test_brands_tracked_are_capped_and_the_stalest_goes_first():
    detector = SpikeDetector(SpikeConfig(max_brands=50))
    vectors = unrelated(1_000)
    for i, vector in enumerate(vectors):  # 1,000 brands of one message each; Nordtel writes every 10th
        brand = "Nordtel" if i % 10 == 0 else f"brand-{i}"
        detector.observe(brand, START + i, vector, 0.0, actionable=True, text="hello")
    assert detector.stored()["brands"] == 50
    assert "Nordtel" in detector.brands() and "brand-1" not in detector.brands()


# -- time from the messages cannot run ahead of the present (issue 19, findings 4 and 5) -----------------
def test_a_message_from_the_future_does_not_silence_later_bursts():
    detector = SpikeDetector()
    vectors = alike(21)
    far = datetime(2199, 1, 1, tzinfo=UTC).timestamp()
    detector.observe("Munchly", far, vectors[0], 0.0, actionable=True, text="from the future")
    now = time.time()
    for i, vector in enumerate(vectors[1:]):  # an outage burst now, over the last ten minutes
        detector.observe("Nordtel", now - 600 + 30 * i, vector, 0.0, actionable=True, text=f"outage {i}")
    assert [a["kind"] for a in detector.active()] == ["cluster"]
    assert detector.clock <= time.time() + detector.config.max_clock_skew_seconds


def test_a_date_past_year_9999_cannot_break_the_alerts():
    detector = SpikeDetector()
    t = datetime.fromisoformat("9999-12-31T23:59:59-12:00").timestamp()  # year 10000 in UTC
    for i, vector in enumerate(alike(8)):
        detector.observe("Nordtel", t, vector, 0.9, actionable=True, text=f"outage {i}")
    alerts = detector.active()
    assert sorted(a["kind"] for a in alerts) == ["cluster", "crisis"]
    assert all(datetime.fromisoformat(a["last_seen"]).timestamp() <= time.time() + 86_400 for a in alerts)
    alert = Alert("Nordtel", "cluster", 1e15, 8.0, 1.0, 6.0, [], float("inf"))  # made by hand, out of range
    assert alert.to_dict()["started_at"] == alert.to_dict()["last_seen"] == "9999-12-31T23:59:59+00:00"


@pytest.fixture
def skew(monkeypatch):
    """Settings read afresh, with TRIAGE_MAX_CLOCK_SKEW_SECONDS set by the test."""
    from triage_ml.settings import get_settings

    def set_skew(seconds: str) -> None:
        monkeypatch.setenv("TRIAGE_MAX_CLOCK_SKEW_SECONDS", seconds)
        get_settings.cache_clear()

    yield set_skew
    monkeypatch.delenv("TRIAGE_MAX_CLOCK_SKEW_SECONDS", raising=False)
    get_settings.cache_clear()


def test_created_at_beyond_the_clock_skew_is_refused_by_the_api_schema_and_score_batch(skew):
    from pydantic import ValidationError

    from triage_ml.batch.score import parse_row
    from triage_ml.messages import MessageIn

    skew("3600")
    soon = datetime.now(UTC) + timedelta(minutes=30)
    assert MessageIn(text="hi", created_at=soon).created_at == soon
    assert MessageIn(text="hi", created_at="2020-01-01T00:00:00").created_at.year == 2020  # the past is fine
    for late in ("2199-01-01T00:00:00Z", "9999-12-31T23:59:59-12:00", (soon + timedelta(hours=1)).isoformat()):
        with pytest.raises(ValidationError) as refused:
            MessageIn(text="hi", created_at=late)
        [error] = refused.value.errors()
        assert error["loc"] == ("created_at",) and "TRIAGE_MAX_CLOCK_SKEW_SECONDS" in error["msg"], error
        message, reason = parse_row({"text": "hi", "created_at": late}, "text")
        assert message is None and reason.startswith("created_at: ") and "ahead of" in reason, reason


def test_a_new_encoder_of_another_size_starts_the_clusters_afresh():
    detector = SpikeDetector()
    for i, vector in enumerate([*alike(8, dim=384), *alike(8, dim=768)]):  # a model reload between the two
        detector.observe("Nordtel", START + i, vector, 0.0, actionable=True, text=f"outage {i}")
    [alert] = detector.active()
    assert alert["value"] == 8 and detector.stored()["clusters"] == 1
