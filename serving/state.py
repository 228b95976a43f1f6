"""What the service holds while it runs: the loaded model, the escalation map, the batcher, the active
personal API keys.

The model and the map are swapped by assigning a new object: a batch takes its references when it
starts, so requests in flight finish on the old model and every response names the version that
produced it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import threading
import time
from datetime import datetime
from pathlib import Path

import anyio
from sqlalchemy.exc import SQLAlchemyError

from serving.metrics import ServiceMetrics
from triage_ml.batching import MicroBatcher
from triage_ml.errors import ConfigError, ModelNotFoundError, StoreUnavailableError
from triage_ml.labels.disputes import DisputePolicy
from triage_ml.labels.feedback import record_predictions
from triage_ml.messages import Message
from triage_ml.monitoring.spikes import SpikeConfig, SpikeDetector
from triage_ml.registry import alias_version, client_for, load, resolve
from triage_ml.review.client import label_studio_client
from triage_ml.routing import EscalationMap
from triage_ml.scoring import LoadedModel, score, score_with_embeddings
from triage_ml.settings import Settings
from triage_ml.store.db import Store
from triage_ml.store.keys import Identity, active_keys
from triage_ml.times import as_utc

log = logging.getLogger("triage_ml.serving")
shadow_log = logging.getLogger("triage_ml.shadow")


class ServiceState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = settings.keys()
        if not self.keys:
            raise ConfigError("no API keys configured: set TRIAGE_API_KEYS to role:key pairs "
                              "(scorer, agent, lead, admin); `make run` writes development keys to .env")
        self.metrics = ServiceMetrics()
        self.routes = EscalationMap.from_yaml(settings.routing_path)
        self._routes_mtime = _mtime(settings.routing_path)
        self.loaded: LoadedModel | None = None
        self.batcher = MicroBatcher(self._score_batch, max_items=settings.batch_max_messages,
                                    max_wait=settings.batch_wait_ms / 1000, cost=_encoder_chars,
                                    max_cost=settings.batch_max_chars)
        self._reload_lock = asyncio.Lock()
        self._poller: asyncio.Task | None = None
        self.client = client_for(settings)  # explicit store URIs: the service sets no MLflow global
        self.store = Store(settings.database_url, auto_migrate=settings.database_auto_migrate)
        # Personal keys (store/keys.py): SHA-256 of each active key -> its role and person. The guard reads this
        # on the event loop for every request, so the store is not queried per request: the poller re-reads it
        # every routing_poll_seconds, and the admin API at once after it creates or revokes a key.
        self.people: dict[str, Identity] = {}
        self._people_stale = False
        self._people_lock = asyncio.Lock()  # one read at a time, so an older read never replaces a newer one
        self.dispute_policy = DisputePolicy(settings.dispute_confidence, settings.dispute_crisis_high,
                                            settings.dispute_crisis_low)
        key = settings.label_studio_api_key
        self.label_studio = label_studio_client(settings) if key and key.get_secret_value() else None
        self.shadow: LoadedModel | None = None
        self._shadow_tasks: set[asyncio.Task] = set()
        self.spikes = SpikeDetector(SpikeConfig(
            window_seconds=settings.spike_window_seconds, similarity=settings.spike_similarity,
            min_cluster=settings.spike_min_cluster, crisis_min=settings.spike_crisis_min,
            max_clock_skew_seconds=settings.max_clock_skew_seconds))
        self.metrics.watch_spikes(self.spikes)
        self._watch: queue.Queue = queue.Queue(maxsize=256)
        self._watcher = threading.Thread(target=self._watch_spikes, name="spike-watcher", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            await anyio.to_thread.run_sync(self.store.ensure_schema)
        except StoreUnavailableError as exc:  # scoring works without it; feedback answers 503 until it is back
            log.error("%s; feedback and disputes answer 503 until it is reachable", exc)
        await self.refresh_keys()
        await self.reload_model(force=True)
        if self.settings.spike_alerts:  # off: nothing is queued for it, so it is not started
            self._watcher.start()
        self.batcher.start()
        self._poller = asyncio.create_task(self._poll(), name="reload-poller")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.batcher.stop()
        if self._watcher.is_alive():
            self._watch.put(None)
            await anyio.to_thread.run_sync(self._watcher.join, 10)
        self.store.dispose()

    # -- scoring -------------------------------------------------------------------------------------
    def _score_batch(self, messages: list[Message]) -> tuple[list[dict], LoadedModel]:
        loaded, routes = self.loaded, self.routes
        if loaded is None:
            raise ModelNotFoundError("no model loaded")
        self.metrics.batch_size.observe(len(messages))
        results, embeddings = score_with_embeddings(loaded, routes, messages)
        keep = [i for i, r in enumerate(results) if r["actionable"]] if self.settings.spike_alerts else []
        if keep:
            try:
                self._watch.put_nowait((loaded, [messages[i] for i in keep], [results[i] for i in keep],
                                        embeddings[keep], time.time()))
            except queue.Full:  # overloaded: the response comes first, spike watching skips this batch
                self.metrics.spikes_skipped.inc(len(keep))
        return results, loaded

    def _watch_spikes(self) -> None:
        """The spike watcher's thread: similarity vectors for actionable messages, off the response path.

        It runs at the lowest CPU priority (Linux threads have their own nice value) and the similarity
        encoder runs on this thread alone, so under load the responses get the cores and the watcher falls
        behind; its queue then fills and batches are skipped (``triage_spikes_skipped_total``)."""
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        while (item := self._watch.get()) is not None:
            loaded, messages, results, embeddings, now = item
            try:
                vectors = loaded.model.similarity_vectors([m.text for m in messages], embeddings)
                for m, r, vector in zip(messages, results, vectors, strict=True):
                    self.spikes.observe(m.brand, _epoch(m.created_at, now), vector, r["crisis_risk"],
                                        actionable=True, message_id=m.message_id, text=m.text)
            except Exception:  # watching must never stop the service
                log.exception("spike watcher failed on a batch")

    # -- shadow mode ---------------------------------------------------------------------------------
    def shadow_score(self, messages: list[Message], results: list[dict]) -> None:
        """Score the same messages with the shadow model in the background: count and record where it
        disagrees with what was answered. Never changes, or waits for, the response."""
        shadow = self.shadow
        if shadow is None:
            return
        task = asyncio.get_running_loop().create_task(self._shadow(shadow, messages, results))
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(self, shadow: LoadedModel, messages: list[Message], results: list[dict]) -> None:
        try:
            theirs = await anyio.to_thread.run_sync(score, shadow, self.routes, messages)
        except Exception as exc:  # the shadow must never hurt the service
            log.warning("shadow model v%s failed to score a batch: %s", shadow.version, exc)
            return
        self.metrics.shadow_scored.inc(len(messages))
        for m, ours, other in zip(messages, results, theirs, strict=True):
            differ = [h for h in ("actionable", "priority_tier", "crisis") if ours[h] != other[h]]
            for head in differ:
                self.metrics.shadow_disagreements.labels(head).inc()
            if differ:
                shadow_log.info(json.dumps({"message_id": m.message_id, "heads": differ, "shadow": shadow.version,
                                            "served": {h: ours[h] for h in differ},
                                            "shadow_said": {h: other[h] for h in differ}}))
        if any(m.message_id for m in messages):
            with contextlib.suppress(StoreUnavailableError):
                items = [(m, r) for m, r in zip(messages, theirs, strict=True) if m.message_id]
                await anyio.to_thread.run_sync(record_predictions, self.store, shadow.name, shadow.version, items)

    async def score(self, messages: list[Message], caller: str | None = None) -> tuple[list[dict], LoadedModel]:
        """Results and the model that produced them; ``caller`` (who asks) takes turns with other callers."""
        results, loaded = await self.batcher.submit(messages, caller)
        self.metrics.count(results)
        return results, loaded

    async def record_predictions(self, loaded: LoadedModel, messages: list[Message],
                                 results: list[dict]) -> list[dict]:
        """Record results of messages that have an id; a (message id, version) seen before gets its first
        result back. Scoring does not wait on a broken store: it answers, logs and counts the failure."""
        items = [(m, r) for m, r in zip(messages, results, strict=True) if m.message_id]
        try:
            stored = await anyio.to_thread.run_sync(record_predictions, self.store, loaded.name, loaded.version, items)
        except StoreUnavailableError as exc:
            self.metrics.unrecorded.inc(len(items))
            log.warning("predictions not recorded: %s", exc)
            return results
        return [stored.get(m.message_id, r) if m.message_id else r for m, r in zip(messages, results, strict=True)]

    # -- reloading -----------------------------------------------------------------------------------
    def _alias_version(self) -> tuple[str, str | None]:
        mv = resolve(self.client, self.settings.registered_model_name, self.settings.model_alias)
        return str(mv.version), mv.run_id

    async def reload_model(self, *, force: bool = False) -> bool:
        """Load the version the alias points to, if it is not the one served; True when it changed. The
        shadow model (``shadow_alias``) follows its own alias the same way."""
        async with self._reload_lock:
            version, run_id = await anyio.to_thread.run_sync(self._alias_version)
            await self._reload_shadow()
            if not force and self.loaded is not None and self.loaded.version == version:
                return False
            self.loaded = await self._load(version, run_id, self.settings.model_alias)
            self.metrics.set_model(self.settings.registered_model_name, version)
            log.info("serving %s version %s", self.settings.registered_model_name, version)
            return True

    async def _load(self, version: str, run_id: str | None, alias: str) -> LoadedModel:
        s = self.settings
        model = await anyio.to_thread.run_sync(
            lambda: load(self.client, f"models:/{s.registered_model_name}/{version}", backend=s.encoder_backend,
                         threads=s.torch_threads))
        return LoadedModel(model, s.registered_model_name, version, alias, run_id)

    async def _reload_shadow(self) -> None:
        alias = self.settings.shadow_alias
        if not alias:
            return
        mv = await anyio.to_thread.run_sync(alias_version, self.client, self.settings.registered_model_name, alias)
        if mv is None:
            if self.shadow is not None:
                log.info("shadow alias %s is gone; shadow scoring stops", alias)
            self.shadow = None
            return
        if self.shadow is None or self.shadow.version != str(mv.version):
            self.shadow = await self._load(str(mv.version), mv.run_id, alias)
            log.info("shadow scoring with %s version %s (%s)", self.settings.registered_model_name, mv.version, alias)

    def reload_routes(self) -> None:
        """Load the map again; an invalid file raises ConfigError and the current map stays in force."""
        routes = EscalationMap.from_yaml(self.settings.routing_path)
        self.routes = routes
        self._routes_mtime = _mtime(self.settings.routing_path)

    async def refresh_keys(self) -> None:
        """Re-read the active personal keys. When the store cannot be read, the last keys read stay in force
        (a revocation then waits for the store) and the failure is logged once."""
        async with self._people_lock:
            try:
                people = await anyio.to_thread.run_sync(active_keys, self.store)
            except (StoreUnavailableError, SQLAlchemyError) as exc:
                if not self._people_stale:
                    log.warning("personal API keys not re-read, the last %d read stay in force: %s",
                                len(self.people), str(exc).splitlines()[0])
                self._people_stale = True
                return
            if self._people_stale:
                log.info("personal API keys re-read: %d active", len(people))
            self.people, self._people_stale = people, False

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        next_model_check = loop.time() + self.settings.model_poll_seconds
        while True:
            await asyncio.sleep(self.settings.routing_poll_seconds)
            mtime = _mtime(self.settings.routing_path)
            if mtime != self._routes_mtime:
                self._routes_mtime = mtime  # an invalid file is reported once, not on every poll
                try:
                    self.reload_routes()
                    log.info("routing map reloaded from %s", self.settings.routing_path)
                except ConfigError as exc:
                    log.error("routing map not reloaded, previous map stays in force: %s", exc)
            await self.refresh_keys()
            if self.settings.model_poll_seconds and loop.time() >= next_model_check:
                next_model_check = loop.time() + self.settings.model_poll_seconds
                try:
                    await self.reload_model()
                except Exception as exc:  # the registry may be briefly unreachable; keep serving
                    log.warning("model alias check failed, still serving the loaded model: %s", exc)

    def database_reachable(self) -> bool:
        return self.store.reachable()

    def registry_reachable(self) -> bool:
        try:
            self.client.get_registered_model(self.settings.registered_model_name)
            return True
        except Exception:
            return False


def _encoder_chars(message: Message) -> int:
    """What a message costs the encoder, in characters: it reads at most 256 tokens (~1,000 characters)."""
    return min(len(message.text), 1000)


def _epoch(created_at: datetime | None, default: float) -> float:
    """A message's time in seconds since the epoch: its ``created_at`` when given (naive means UTC)."""
    return default if created_at is None else as_utc(created_at).timestamp()


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
