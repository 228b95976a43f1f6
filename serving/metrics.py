"""Prometheus metrics, kept in a registry owned by the app (no process-wide globals)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from triage_ml.monitoring.spikes import SpikeDetector
from triage_ml.scoring import ScoredMessage


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("triage_http_requests", "HTTP requests", ["route", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("triage_http_request_seconds", "request latency", ["route"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                 registry=self.registry)
        self.predictions = Counter("triage_predictions", "predictions by head and value", ["head", "value"],
                                   registry=self.registry)
        self.model_info = Gauge("triage_model_info", "the model being served (value 1)", ["name", "version"],
                                registry=self.registry)
        self.unrecorded = Counter("triage_predictions_unrecorded", "scored messages whose result could not be "
                                  "recorded (label store unreachable)", registry=self.registry)
        self.context_unavailable = Counter("triage_context_unavailable", "batches scored without context (label "
                                           "store unreachable)", registry=self.registry)
        self.batch_size = Histogram("triage_batch_messages", "messages encoded together",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry)

        self.spikes_skipped = Counter("triage_spikes_skipped", "actionable messages not watched for spikes because "
                                      "the watcher was behind", registry=self.registry)
        self.shadow_scored = Counter("triage_shadow_scored", "messages the shadow model also scored",
                                     registry=self.registry)
        self.shadow_disagreements = Counter("triage_shadow_disagreements", "messages where the shadow model "
                                            "disagreed with the served answer, per head", ["head"],
                                            registry=self.registry)

    def watch_spikes(self, detector: SpikeDetector) -> None:
        """Expose the detector's active spikes as gauges, read at scrape time."""
        self.registry.register(_SpikeCollector(detector))

    def set_model(self, name: str, version: str) -> None:
        self.model_info.clear()
        self.model_info.labels(name=name, version=version).set(1)

    def count(self, results: list[ScoredMessage]) -> None:
        for r in results:
            self.predictions.labels("actionable", str(r.actionable).lower()).inc()
            self.predictions.labels("priority_tier", str(r.priority_tier or "none")).inc()
            self.predictions.labels("crisis", str(r.crisis).lower()).inc()


class _SpikeCollector(Collector):
    def __init__(self, detector: SpikeDetector) -> None:
        self.detector = detector

    def collect(self) -> Iterator[GaugeMetricFamily]:
        active = GaugeMetricFamily("triage_spike_active", "1 while a spike alert is active", labels=["brand", "kind"])
        size = GaugeMetricFamily("triage_spike_value", "the active spike's size (similar messages, or summed crisis "
                                 "risk) in the window", labels=["brand", "kind"])
        for alert in self.detector.active():
            active.add_metric([alert["brand"], alert["kind"]], 1)
            size.add_metric([alert["brand"], alert["kind"]], alert["value"])
        yield active
        yield size
