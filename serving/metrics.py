"""Prometheus metrics, kept in a registry owned by the app (no process-wide globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
        self.batch_size = Histogram("triage_batch_messages", "messages encoded together",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry)

    def set_model(self, name: str, version: str) -> None:
        self.model_info.clear()
        self.model_info.labels(name=name, version=version).set(1)

    def count(self, results: list[dict]) -> None:
        for r in results:
            self.predictions.labels("actionable", str(r["actionable"]).lower()).inc()
            self.predictions.labels("priority_tier", str(r["priority_tier"] or "none")).inc()
            self.predictions.labels("crisis", str(r["crisis"]).lower()).inc()
