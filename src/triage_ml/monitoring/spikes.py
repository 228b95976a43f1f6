"""Spike alerts for mass problems: many similar actionable messages, or a pile-up of crisis risk, for one
brand in a short window, against that brand's own baseline.

The service feeds every scored actionable message (its similarity vector, crisis risk, brand and time; the
vector comes from the base sentence encoder, since a fine-tuned one pulls every message of a class
together, see ``TriageModel.similarity_vectors``). Per brand
a rolling window (``window_seconds``) keeps them; each message's cluster is the set of window messages
within cosine ``similarity`` of it. Two signals, each against a slowly moving baseline of itself (an
exponentially weighted average over ``baseline_halflife_seconds``, frozen while its alert is active):
- cluster: the largest cluster reaches ``max(min_cluster, cluster_factor x baseline)``;
- crisis: the window's summed crisis risk reaches ``max(crisis_min, crisis_factor x baseline)``.
Time is the messages' own (``created_at``, else when scored), so replayed traffic behaves as it did live.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SpikeConfig:
    window_seconds: float = 900.0
    similarity: float = 0.7
    min_cluster: int = 6
    cluster_factor: float = 3.0
    crisis_min: float = 4.0
    crisis_factor: float = 3.0
    baseline_halflife_seconds: float = 6 * 3600.0
    examples: int = 3


@dataclass
class _Entry:
    key: int
    t: float
    vector: np.ndarray
    crisis_risk: float
    message_id: str | None
    text: str
    neighbours: set[int] = field(default_factory=set)


@dataclass
class Alert:
    brand: str
    kind: str  # cluster | crisis
    started_at: float
    value: float
    baseline: float
    threshold: float
    examples: list[dict[str, Any]]
    last_seen: float

    def to_dict(self) -> dict[str, Any]:
        iso = lambda t: datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")  # noqa: E731
        what = (f"{int(self.value)} similar actionable messages in the window" if self.kind == "cluster"
                else f"summed crisis risk {self.value:.1f} in the window")
        return {"brand": self.brand, "kind": self.kind, "summary": f"{what} (usual {self.baseline:.1f}, alert at "
                                                                  f"{self.threshold:.1f})",
                "started_at": iso(self.started_at), "last_seen": iso(self.last_seen), "value": round(self.value, 3),
                "baseline": round(self.baseline, 3), "threshold": round(self.threshold, 3),
                "examples": self.examples}


class _Brand:
    def __init__(self) -> None:
        self.window: deque[_Entry] = deque()
        self.baseline = {"cluster": 1.0, "crisis": 0.0}
        self.updated: float | None = None
        self.alerts: dict[str, Alert] = {}


class SpikeDetector:
    """Thread-safe: the scoring thread observes, the API reads ``active()``."""

    def __init__(self, config: SpikeConfig | None = None) -> None:
        self.config = config or SpikeConfig()
        self._brands: dict[str, _Brand] = {}
        self._lock = threading.Lock()
        self._next_key = 0
        self.clock = 0.0  # the latest message time seen (seconds since the epoch)

    def observe(self, brand: str | None, t: float, vector: np.ndarray, crisis_risk: float, *, actionable: bool,
                message_id: str | None = None, text: str = "") -> None:
        """One scored message; only actionable ones enter the window."""
        with self._lock:
            self.clock = max(self.clock, t)
            state = self._brands.setdefault(brand or "(no brand)", _Brand())
            self._evict(state, t)
            if actionable:
                self._add(state, t, np.asarray(vector, dtype=np.float32), float(crisis_risk), message_id, text)
            self._evaluate(brand or "(no brand)", state, t)

    def active(self) -> list[dict[str, Any]]:
        """Alerts active at the latest message time, largest first."""
        with self._lock:
            for name, state in self._brands.items():
                self._evict(state, self.clock)
                self._evaluate(name, state, self.clock, learn=False)
            alerts = [a for s in self._brands.values() for a in s.alerts.values()]
        return [a.to_dict() for a in sorted(alerts, key=lambda a: -a.value / max(a.threshold, 1e-9))]

    # -- internals -----------------------------------------------------------------------------------
    def _add(self, state: _Brand, t: float, vector: np.ndarray, risk: float, message_id: str | None,
             text: str) -> None:
        entry = _Entry(self._next_key, t, vector, risk, message_id, text[:280])
        self._next_key += 1
        if state.window:
            others = np.stack([e.vector for e in state.window])
            close = np.flatnonzero(others @ vector >= self.config.similarity)
            for i in close:
                other = state.window[int(i)]
                other.neighbours.add(entry.key)
                entry.neighbours.add(other.key)
        state.window.append(entry)

    def _evict(self, state: _Brand, now: float) -> None:
        horizon = now - self.config.window_seconds
        while state.window and state.window[0].t < horizon:
            gone = state.window.popleft()
            for other in state.window:
                other.neighbours.discard(gone.key)

    def _evaluate(self, brand: str, state: _Brand, now: float, *, learn: bool = True) -> None:
        c = self.config
        largest = max(state.window, key=lambda e: len(e.neighbours), default=None)
        values = {"cluster": 1.0 + (len(largest.neighbours) if largest else 0),
                  "crisis": float(sum(e.crisis_risk for e in state.window))}
        floors = {"cluster": (float(c.min_cluster), c.cluster_factor), "crisis": (c.crisis_min, c.crisis_factor)}
        for kind, value in values.items():
            floor, factor = floors[kind]
            threshold = max(floor, factor * state.baseline[kind])
            if value >= threshold:
                alert = state.alerts.get(kind)
                examples = self._examples(state, largest if kind == "cluster" else None)
                if alert is None:
                    state.alerts[kind] = Alert(brand, kind, now, value, state.baseline[kind], threshold, examples, now)
                else:
                    alert.value, alert.threshold, alert.examples, alert.last_seen = value, threshold, examples, now
            else:
                state.alerts.pop(kind, None)
        if learn:
            dt = 0.0 if state.updated is None else max(0.0, now - state.updated)
            weight = 1 - math.exp(-dt * math.log(2) / c.baseline_halflife_seconds)
            for kind, value in values.items():
                if kind not in state.alerts:  # a spike does not teach the baseline that spikes are normal
                    state.baseline[kind] += weight * (value - state.baseline[kind])
            state.updated = now

    def _examples(self, state: _Brand, center: _Entry | None) -> list[dict[str, Any]]:
        if center is not None:
            chosen = [center] + [e for e in reversed(state.window) if e.key in center.neighbours]
        else:
            chosen = sorted(state.window, key=lambda e: -e.crisis_risk)
        return [{"message_id": e.message_id, "text": e.text, "crisis_risk": round(e.crisis_risk, 3)}
                for e in chosen[: self.config.examples]]
