"""What the service holds while it runs, in parts: the keys (``KeyRing``), the models (``ModelHolder``), the
escalation map (``MapHolder``), the micro-batcher, the spike watcher, the shadow scorer and the recorder.
``ServiceState`` builds them from the settings, starts and stops them, and polls for changes (map file,
personal keys, the model alias)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

import anyio
from sqlalchemy.exc import SQLAlchemyError

from serving.escalation_map import MapHolder
from serving.keyring import KeyRing
from serving.metrics import ServiceMetrics
from serving.models import Loader, ModelHolder
from serving.recorder import Recorder
from serving.shadow import ShadowScorer
from serving.spike_watch import SpikeWatcher
from triage_ml import context
from triage_ml.batching import MicroBatcher
from triage_ml.context import Context
from triage_ml.errors import ModelNotFoundError, StoreUnavailableError
from triage_ml.labels.disputes import DisputePolicy
from triage_ml.messages import Message
from triage_ml.registry import client_for
from triage_ml.review.client import label_studio_client
from triage_ml.scoring import LoadedModel, ScoredMessage, score_with_embeddings
from triage_ml.settings import Settings
from triage_ml.store.audit import Actor
from triage_ml.store.db import Store
from triage_ml.store.erasure import purge_older_than

log = logging.getLogger("triage_ml.serving")


class ServiceState:
    def __init__(self, settings: Settings, loader: Loader | None = None) -> None:
        self.settings = settings
        self.store = Store(settings.database_url, auto_migrate=settings.database_auto_migrate)
        self.keyring = KeyRing(settings, self.store)
        self.metrics = ServiceMetrics()
        self.maps = MapHolder(settings.routing_path, self.store)
        self.models = ModelHolder(settings, client_for(settings), loader,  # explicit store URIs: no MLflow global
                                  on_change=lambda m: self.metrics.set_model(m.name, m.version))
        self.batcher = MicroBatcher(self._score_batch, max_items=settings.batch_max_messages,
                                    max_wait=settings.batch_wait_ms / 1000, cost=_encoder_chars,
                                    max_cost=settings.batch_max_chars)
        self.recorder = Recorder(self.store, self.metrics)
        self.spikes = SpikeWatcher(settings, self.metrics)
        self.shadow = ShadowScorer(self.models, self.maps, self.metrics, self.recorder)
        self.dispute_policy = DisputePolicy(settings.dispute_confidence, settings.dispute_crisis_high,
                                            settings.dispute_crisis_low)
        key = settings.label_studio_api_key
        self.label_studio = label_studio_client(settings) if key and key.get_secret_value() else None
        self._poller: asyncio.Task | None = None

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            await anyio.to_thread.run_sync(self.store.ensure_schema)
        except StoreUnavailableError as exc:  # scoring works without it; feedback answers 503 until it is back
            log.error("%s; feedback and disputes answer 503 until it is reachable", exc)
        await self.keyring.refresh()
        await anyio.to_thread.run_sync(self.maps.record)
        await self.models.reload(force=True)
        self.spikes.start()
        self.batcher.start()
        self._poller = asyncio.create_task(self._poll(), name="reload-poller")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.batcher.stop()
        await self.spikes.stop()
        self.store.dispose()

    # -- scoring -------------------------------------------------------------------------------------
    def _score_batch(self, messages: list[Message]) -> tuple[list[ScoredMessage], LoadedModel]:
        loaded, routes = self.models.loaded, self.maps.current
        if loaded is None:
            raise ModelNotFoundError("no model loaded")
        self.metrics.batch_size.observe(len(messages))
        messages = self._threads(messages)
        results, embeddings = score_with_embeddings(loaded, routes, messages, self._contexts(messages))
        self.spikes.offer(loaded, messages, results, embeddings)
        return results, loaded

    def _threads(self, messages: list[Message]) -> list[Message]:
        """Each message whose caller named the answered turn by id only, with that turn's text from the label
        store (or a note saying it is not there; the store unreadable reads as not there)."""
        if not any(m.thread and m.thread.reply_to_id for m in messages):
            return messages
        try:
            return context.resolve_threads(self.store, messages)
        except (StoreUnavailableError, SQLAlchemyError) as exc:
            log.warning("answered turns not looked up: %s", str(exc).splitlines()[0])
            return [replace(m, thread=m.thread.resolved(None)) if m.thread else m for m in messages]

    def _contexts(self, messages: list[Message]) -> list[Context | None] | None:
        """What the label store knows of each message's conversation and author; None (scored without context,
        logged) when the store cannot be read: scoring never waits for it to come back."""
        if not any(m.author or m.conversation_id for m in messages):
            return None
        try:
            return list(context.lookup(self.store, messages,
                                       [len(m.thread.turns) if m.thread else 0 for m in messages]))
        except (StoreUnavailableError, SQLAlchemyError) as exc:  # e.g. a store not migrated yet: never a 500
            self.metrics.context_unavailable.inc()
            log.warning("scored without context: %s", str(exc).splitlines()[0])
            return None

    async def score(self, messages: list[Message],
                    caller: str | None = None) -> tuple[list[ScoredMessage], LoadedModel]:
        """Results and the model that produced them; ``caller`` (who asks) takes turns with other callers."""
        results, loaded = await self.batcher.submit(messages, caller)
        self.metrics.count(results)
        return results, loaded

    # -- polling -------------------------------------------------------------------------------------
    async def _purge(self) -> None:
        """Erase the texts past TRIAGE_RETENTION_DAYS (README, "Privacy"); a store that is down is tried again
        at the next check."""
        days = self.settings.retention_days
        try:
            counts = await anyio.to_thread.run_sync(purge_older_than, self.store, days, Actor(None, "service"))
        except StoreUnavailableError as exc:
            log.warning("retention purge skipped: %s", exc)
            return
        if counts["messages"]:
            log.info("retention: erased %d message(s) older than %g days", counts["messages"], days)

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        next_model_check = loop.time() + self.settings.model_poll_seconds
        next_purge = loop.time()  # retention: at start, then hourly
        while True:
            await asyncio.sleep(self.settings.routing_poll_seconds)
            await anyio.to_thread.run_sync(self.maps.follow_file)
            await self.keyring.refresh()
            if self.settings.retention_days and loop.time() >= next_purge:
                next_purge = loop.time() + RETENTION_CHECK_SECONDS
                await self._purge()
            if self.settings.model_poll_seconds and loop.time() >= next_model_check:
                next_model_check = loop.time() + self.settings.model_poll_seconds
                try:
                    await self.models.reload()
                except Exception as exc:  # the registry may be briefly unreachable; keep serving
                    log.warning("model alias check failed, still serving the loaded model: %s", exc)


RETENTION_CHECK_SECONDS = 3600.0


def _encoder_chars(message: Message) -> int:
    """What a message costs the encoder, in characters: it reads at most 256 tokens (~1,000 characters)."""
    return min(len(message.text), 1000)
