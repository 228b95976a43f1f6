"""Spike alerts for mass problems: many similar actionable messages, or a pile-up of crisis risk, for one
brand in a short window, against that brand's own baseline.

The service feeds every scored actionable message (its similarity vector, crisis risk, brand and time; the
vector comes from the base sentence encoder, since a fine-tuned one pulls every message of a class
together, see ``TriageModel.similarity_vectors``). Per brand, messages are clustered as they come: each
cluster is represented by the message that started it, and a message counts in every cluster whose
representative is within cosine ``similarity`` of it, or starts a cluster of its own (a cluster is thus the
representative's neighbourhood). Each cluster counts its members per time bucket (``buckets`` per
``window_seconds``); buckets older than the window are dropped, and a cluster with none left goes. Two
signals, each against a slowly moving baseline of itself (an exponentially weighted average over
``baseline_halflife_seconds``, frozen while its alert is active):
- cluster: the largest cluster's members in the window reach ``max(min_cluster, cluster_factor x baseline)``;
- crisis: the window's summed crisis risk reaches ``max(crisis_min, crisis_factor x baseline)``.

Memory and work per message are bounded whatever the traffic: at most ``max_clusters`` clusters per brand
(a new one past that replaces the smallest), ``max_brands`` brands (the stalest goes), a few examples per
cluster and per bucket. Time is the messages' own (``created_at``, else when scored), so replayed traffic
behaves as it did live, but never more than ``max_clock_skew_seconds`` past this machine's clock: one
message dated in the future cannot move the window ahead and silence the alerts.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()  # the last second a datetime can show


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
    buckets: int = 30  # the window's time resolution: a message leaves it at most window / buckets late
    max_clusters: int = 64  # per brand
    max_brands: int = 256
    max_clock_skew_seconds: float = 300.0  # how far past this machine's clock a message's time may go


@dataclass(frozen=True, slots=True)
class _Example:
    t: float
    message_id: str | None
    text: str
    crisis_risk: float

    def to_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "text": self.text, "crisis_risk": round(self.crisis_risk, 3)}


@dataclass
class _Cluster:
    examples: deque[_Example]
    last_seen: float


def iso_time(t: float) -> str:
    """``t`` (seconds since the epoch) in ISO 8601, UTC; times a datetime cannot hold show as its limits."""
    t = min(max(t, 0.0), LATEST) if not math.isnan(t) else 0.0
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


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
        what = (f"{int(self.value)} similar actionable messages in the window" if self.kind == "cluster"
                else f"summed crisis risk {self.value:.1f} in the window")
        return {"brand": self.brand, "kind": self.kind, "summary": f"{what} (usual {self.baseline:.1f}, alert at "
                                                                  f"{self.threshold:.1f})",
                "started_at": iso_time(self.started_at), "last_seen": iso_time(self.last_seen),
                "value": round(self.value, 3), "baseline": round(self.baseline, 3),
                "threshold": round(self.threshold, 3), "examples": self.examples}


@dataclass
class _Brand:
    """One brand's window: clusters (representatives and per-bucket member counts, one row each) and per-bucket
    crisis risk, in a ring of ``buckets + 1`` columns; column ``b % ring`` holds bucket ``b``."""

    ring: int
    bucket: int | None = None  # the newest bucket in the ring
    representatives: np.ndarray | None = None  # (clusters, dim): each cluster's first message, unit rows
    counts: np.ndarray = field(init=False)  # (clusters, ring) members per bucket
    clusters: list[_Cluster] = field(default_factory=list)
    risk: np.ndarray = field(init=False)  # (ring,) summed crisis risk per bucket
    risky: list[list[_Example]] = field(init=False)  # per bucket, its riskiest few messages
    baseline: dict[str, float] = field(default_factory=lambda: {"cluster": 1.0, "crisis": 0.0})
    updated: float | None = None
    alerts: dict[str, Alert] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counts = np.zeros((0, self.ring), dtype=np.int64)
        self.risk = np.zeros(self.ring)
        self.risky = [[] for _ in range(self.ring)]


class SpikeDetector:
    """Thread-safe: the scoring thread observes, the API reads ``active()``."""

    def __init__(self, config: SpikeConfig | None = None) -> None:
        self.config = config or SpikeConfig()
        self._width = self.config.window_seconds / self.config.buckets
        self._brands: OrderedDict[str, _Brand] = OrderedDict()  # least recently observed first
        self._lock = threading.Lock()
        self.clock = 0.0  # the latest message time seen (seconds since the epoch), never past now + skew
        self.comparisons = 0  # message-to-representative similarities computed, in all

    def observe(self, brand: str | None, t: float, vector: np.ndarray, crisis_risk: float, *, actionable: bool,
                message_id: str | None = None, text: str = "") -> None:
        """One scored message; only actionable ones enter the window."""
        name = brand or "(no brand)"
        with self._lock:
            t = self._bounded(t)
            self.clock = max(self.clock, t)
            state = self._brand(name)
            self._advance(state, t)
            if actionable:
                self._add(state, t, np.asarray(vector, dtype=np.float32), float(crisis_risk), message_id, text)
            self._evaluate(name, state, t)

    def active(self) -> list[dict[str, Any]]:
        """Alerts active at the latest message time, largest first."""
        with self._lock:
            for name, state in self._brands.items():
                self._advance(state, self.clock)
                self._evaluate(name, state, self.clock, learn=False)
            alerts = [a for s in self._brands.values() for a in s.alerts.values()]
        return [a.to_dict() for a in sorted(alerts, key=lambda a: -a.value / max(a.threshold, 1e-9))]

    def brands(self) -> list[str]:
        """The brands tracked, least recently seen first."""
        with self._lock:
            return list(self._brands)

    def stored(self) -> dict[str, int]:
        """What the detector holds: brands, clusters and example messages (all bounded by the config)."""
        with self._lock:
            states = list(self._brands.values())
            return {"brands": len(states), "clusters": sum(len(s.clusters) for s in states),
                    "examples": sum(len(c.examples) for s in states for c in s.clusters)
                    + sum(len(r) for s in states for r in s.risky)}

    # -- internals -----------------------------------------------------------------------------------
    def _bounded(self, t: float) -> float:
        """A message's time, no later than this machine's clock plus the allowed skew (a time that is not a
        number at all counts as that latest)."""
        latest = min(time.time() + self.config.max_clock_skew_seconds, LATEST)
        return min(t, latest) if math.isfinite(t) else latest

    def _brand(self, name: str) -> _Brand:
        state = self._brands.get(name)
        if state is None:
            state = self._brands[name] = _Brand(self.config.buckets + 1)
            while len(self._brands) > self.config.max_brands:
                self._brands.popitem(last=False)
        self._brands.move_to_end(name)
        return state

    def _advance(self, state: _Brand, now: float) -> None:
        """Move the brand's ring forward to ``now``: buckets that fall out of the window are emptied, and
        clusters left with no member in it go."""
        bucket = math.floor(now / self._width)
        if state.bucket is not None and bucket <= state.bucket:
            return
        first = bucket - state.ring + 1 if state.bucket is None else max(state.bucket + 1, bucket - state.ring + 1)
        for b in range(first, bucket + 1):
            column = b % state.ring
            state.counts[:, column] = 0
            state.risk[column] = 0.0
            state.risky[column] = []
        state.bucket = bucket
        alive = np.flatnonzero(state.counts.sum(axis=1) > 0)
        if len(alive) < len(state.clusters):
            self._keep(state, alive)

    def _keep(self, state: _Brand, rows: np.ndarray) -> None:
        state.counts = state.counts[rows]
        state.representatives = state.representatives[rows] if state.representatives is not None else None
        state.clusters = [state.clusters[int(i)] for i in rows]

    def _add(self, state: _Brand, t: float, vector: np.ndarray, risk: float, message_id: str | None,
             text: str) -> None:
        bucket = math.floor(t / self._width)
        if state.bucket is not None and bucket <= state.bucket - state.ring:
            return  # older than the window: it would leave at once
        column = bucket % state.ring
        example = _Example(t, message_id, text[:280], risk)
        norm = float(np.linalg.norm(vector))
        for row in self._clusters_of(state, vector / norm if norm > 0 else vector):
            state.counts[row, column] += 1
            cluster = state.clusters[row]
            cluster.examples.append(example)
            cluster.last_seen = max(cluster.last_seen, t)
        state.risk[column] += risk
        riskiest = sorted([*state.risky[column], example], key=lambda e: -e.crisis_risk)
        state.risky[column] = riskiest[: self.config.examples]

    def _clusters_of(self, state: _Brand, vector: np.ndarray) -> list[int]:
        """The rows of the clusters whose representative is within ``similarity`` of the message, or else
        of a new cluster it represents."""
        if state.representatives is not None and state.representatives.shape[1] != len(vector):
            self._keep(state, np.array([], dtype=np.int64))  # another encoder (a new model): start afresh
            state.representatives = None
        if state.representatives is not None and len(state.clusters):
            self.comparisons += len(state.clusters)
            close = np.flatnonzero(state.representatives @ vector >= self.config.similarity)
            if len(close):
                return [int(i) for i in close]
        return [self._new_cluster(state, vector)]

    def _new_cluster(self, state: _Brand, vector: np.ndarray) -> int:
        if len(state.clusters) >= self.config.max_clusters:  # the smallest (then stalest) makes room
            sizes = state.counts.sum(axis=1)
            gone = min(range(len(sizes)), key=lambda i: (sizes[i], state.clusters[i].last_seen))
            self._keep(state, np.array([i for i in range(len(sizes)) if i != gone], dtype=np.int64))
        state.clusters.append(_Cluster(deque(maxlen=self.config.examples), -math.inf))
        state.counts = np.vstack([state.counts, np.zeros((1, state.ring), dtype=np.int64)])
        row = vector.reshape(1, -1)
        state.representatives = row.copy() if state.representatives is None else np.vstack([state.representatives, row])
        return len(state.clusters) - 1

    def _evaluate(self, brand: str, state: _Brand, now: float, *, learn: bool = True) -> None:
        c = self.config
        sizes = state.counts.sum(axis=1)
        largest = int(np.argmax(sizes)) if len(sizes) else None
        values = {"cluster": max(1.0, float(sizes[largest])) if largest is not None else 1.0,
                  "crisis": float(state.risk.sum())}
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

    def _examples(self, state: _Brand, row: int | None) -> list[dict[str, Any]]:
        """The newest members of cluster ``row`` still in the window, or (crisis) the riskiest messages."""
        oldest = (state.bucket - state.ring + 1) * self._width if state.bucket is not None else -math.inf
        if row is not None:
            chosen = sorted((e for e in state.clusters[row].examples if e.t >= oldest), key=lambda e: -e.t)
        else:
            chosen = sorted((e for r in state.risky for e in r), key=lambda e: -e.crisis_risk)
        return [e.to_dict() for e in chosen[: self.config.examples]]
