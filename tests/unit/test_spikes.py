"""Spike alerts on replayed traffic: a brand's ordinary day, with an outage burst in the middle.

Normal traffic is the seed set's actionable messages for one brand, replayed one every 90 s (about ten per
15-minute window); the burst is 20 differently worded outage reports within 8 minutes. Embeddings are the
real encoder's; crisis risk is the seed label's (0.9 for a crisis, 0.05 otherwise).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from triage_ml.monitoring.spikes import SpikeConfig, SpikeDetector

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
