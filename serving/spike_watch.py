"""The spike watcher: similarity vectors for actionable messages on a thread of its own, off the response path."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from datetime import datetime

import anyio
import numpy as np

from serving.metrics import ServiceMetrics
from triage_ml.messages import Message
from triage_ml.monitoring.spikes import SpikeConfig, SpikeDetector
from triage_ml.scoring import LoadedModel, ScoredMessage
from triage_ml.settings import Settings
from triage_ml.times import as_utc

log = logging.getLogger("triage_ml.serving")


class SpikeWatcher:
    """``offer`` hands a scored batch to the watcher's thread; ``detector`` holds the alerts.

    The thread runs at the lowest CPU priority (Linux threads have their own nice value) and the similarity
    encoder runs on it alone, so under load the responses get the cores and the watcher falls behind; its
    queue then fills and batches are skipped (``triage_spikes_skipped_total``)."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics) -> None:
        self.enabled = settings.spike_alerts
        self.metrics = metrics
        self.detector = SpikeDetector(SpikeConfig(
            window_seconds=settings.spike_window_seconds, similarity=settings.spike_similarity,
            min_cluster=settings.spike_min_cluster, crisis_min=settings.spike_crisis_min,
            max_clock_skew_seconds=settings.max_clock_skew_seconds))
        metrics.watch_spikes(self.detector)
        self._queue: queue.Queue = queue.Queue(maxsize=256)
        self._thread = threading.Thread(target=self._run, name="spike-watcher", daemon=True)

    def start(self) -> None:
        if self.enabled:  # off: nothing is queued for it, so it is not started
            self._thread.start()

    async def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            await anyio.to_thread.run_sync(self._thread.join, 10)

    def offer(self, loaded: LoadedModel, messages: list[Message], results: list[ScoredMessage],
              embeddings: np.ndarray) -> None:
        """Queue the actionable messages of a scored batch; when the queue is full, skip them (and count)."""
        keep = [i for i, r in enumerate(results) if r.actionable] if self.enabled else []
        if not keep:
            return
        try:
            self._queue.put_nowait((loaded, [messages[i] for i in keep], [results[i] for i in keep],
                                    embeddings[keep], time.time()))
        except queue.Full:  # overloaded: the response comes first, spike watching skips this batch
            self.metrics.spikes_skipped.inc(len(keep))

    def _run(self) -> None:
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        while (item := self._queue.get()) is not None:
            loaded, messages, results, embeddings, now = item
            try:
                vectors = loaded.model.similarity_vectors([m.text for m in messages], embeddings)
                for m, r, vector in zip(messages, results, vectors, strict=True):
                    self.detector.observe(m.brand, _epoch(m.created_at, now), vector, r.crisis_risk,
                                          actionable=True, message_id=m.message_id, text=m.text)
            except Exception:  # watching must never stop the service
                log.exception("spike watcher failed on a batch")


def _epoch(created_at: datetime | None, default: float) -> float:
    """A message's time in seconds since the epoch: its ``created_at`` when given (naive means UTC)."""
    return default if created_at is None else as_utc(created_at).timestamp()
