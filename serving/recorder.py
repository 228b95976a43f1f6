"""The recorder: scoring results of messages with an id go to the label store, without holding up a response
when the store is down."""

from __future__ import annotations

import contextlib
import logging

import anyio

from serving.metrics import ServiceMetrics
from triage_ml.errors import StoreUnavailableError
from triage_ml.labels.feedback import record_predictions
from triage_ml.messages import Message
from triage_ml.scoring import LoadedModel, ScoredMessage
from triage_ml.store.db import Store

log = logging.getLogger("triage_ml.serving")


class Recorder:
    def __init__(self, store: Store, metrics: ServiceMetrics) -> None:
        self.store, self.metrics = store, metrics

    async def record(self, loaded: LoadedModel, messages: list[Message],
                     results: list[ScoredMessage]) -> list[ScoredMessage]:
        """Record results of messages that have an id; a (message id, version) seen before gets its first
        result back. Scoring does not wait on a broken store: it answers, logs and counts the failure."""
        items = _items(messages, results)
        try:
            stored = await anyio.to_thread.run_sync(record_predictions, self.store, loaded.name, loaded.version, items)
        except StoreUnavailableError as exc:
            self.metrics.unrecorded.inc(len(items))
            log.warning("predictions not recorded: %s", exc)
            return results
        sent = {m.message_id: shown for m, shown in items}
        # a result stored by this call comes back as the dict it sent: only an earlier one is read back
        return [r if not m.message_id or stored[m.message_id] is sent[m.message_id]
                else ScoredMessage.from_dict(stored[m.message_id]) for m, r in zip(messages, results, strict=True)]

    async def record_quietly(self, loaded: LoadedModel, messages: list[Message],
                             results: list[ScoredMessage]) -> None:
        """Record what a model said (the shadow's answers), dropping them when the store is down."""
        items = _items(messages, results)
        if items:
            with contextlib.suppress(StoreUnavailableError):
                await anyio.to_thread.run_sync(record_predictions, self.store, loaded.name, loaded.version, items)


def _items(messages: list[Message], results: list[ScoredMessage]) -> list[tuple[Message, dict]]:
    """(message, result as stored) for the messages that have an id."""
    return [(m, r.to_dict()) for m, r in zip(messages, results, strict=True) if m.message_id]
