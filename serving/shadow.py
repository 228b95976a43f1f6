"""Shadow scoring: the shadow model scores what the served model answered, in the background; where it
disagrees is counted, logged and recorded. It never changes, or waits for, a response."""

from __future__ import annotations

import asyncio
import json
import logging

import anyio

from serving.escalation_map import MapHolder
from serving.metrics import ServiceMetrics
from serving.models import ModelHolder
from serving.recorder import Recorder
from triage_ml.messages import Message
from triage_ml.scoring import LoadedModel, ScoredMessage, score
from triage_ml.taxonomy import HEADS

log = logging.getLogger("triage_ml.serving")
shadow_log = logging.getLogger("triage_ml.shadow")


class ShadowScorer:
    def __init__(self, models: ModelHolder, maps: MapHolder, metrics: ServiceMetrics, recorder: Recorder) -> None:
        self.models, self.maps, self.metrics, self.recorder = models, maps, metrics, recorder
        self._tasks: set[asyncio.Task] = set()

    def follow(self, messages: list[Message], results: list[ScoredMessage]) -> None:
        """Score ``messages`` with the shadow model (if any) in the background."""
        shadow = self.models.shadow
        if shadow is None:
            return
        task = asyncio.get_running_loop().create_task(self._score(shadow, messages, results))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _score(self, shadow: LoadedModel, messages: list[Message], results: list[ScoredMessage]) -> None:
        try:
            theirs = await anyio.to_thread.run_sync(score, shadow, self.maps.current, messages)
        except Exception as exc:  # the shadow must never hurt the service
            log.warning("shadow model v%s failed to score a batch: %s", shadow.version, exc)
            return
        self.metrics.shadow_scored.inc(len(messages))
        for m, ours, other in zip(messages, results, theirs, strict=True):
            differ = [h for h in HEADS if getattr(ours, h) != getattr(other, h)]
            for head in differ:
                self.metrics.shadow_disagreements.labels(head).inc()
            if differ:
                shadow_log.info(json.dumps({"message_id": m.message_id, "heads": differ, "shadow": shadow.version,
                                            "served": {h: getattr(ours, h) for h in differ},
                                            "shadow_said": {h: getattr(other, h) for h in differ}}))
        await self.recorder.record_quietly(shadow, messages, theirs)
