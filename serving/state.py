"""What the service holds while it runs: the loaded model, the escalation map, the batcher.

The model and the map are swapped by assigning a new object: a batch takes its references when it
starts, so requests in flight finish on the old model and every response names the version that
produced it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import anyio
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from serving.metrics import ServiceMetrics
from triage_ml.batching import MicroBatcher
from triage_ml.errors import ConfigError, ModelNotFoundError, StoreUnavailableError
from triage_ml.labels.disputes import DisputePolicy
from triage_ml.labels.feedback import MESSAGE_FIELDS, record_predictions
from triage_ml.model.pyfunc import load_registered
from triage_ml.pipeline.tracking import connect_mlflow
from triage_ml.routing import EscalationMap
from triage_ml.scoring import LoadedModel, Message, score
from triage_ml.settings import Settings
from triage_ml.store.db import Store

log = logging.getLogger("triage_ml.serving")


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
                                    max_wait=settings.batch_wait_ms / 1000)
        self._reload_lock = asyncio.Lock()
        self._poller: asyncio.Task | None = None
        connect_mlflow(settings)
        self.client = MlflowClient()
        self.store = Store(settings.database_url, auto_migrate=settings.database_auto_migrate)
        self.dispute_policy = DisputePolicy(settings.dispute_confidence, settings.dispute_crisis_high,
                                            settings.dispute_crisis_low)

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            await anyio.to_thread.run_sync(self.store.ensure_schema)
        except StoreUnavailableError as exc:  # scoring works without it; feedback answers 503 until it is back
            log.error("%s; feedback and disputes answer 503 until it is reachable", exc)
        await self.reload_model(force=True)
        self.batcher.start()
        self._poller = asyncio.create_task(self._poll(), name="reload-poller")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.batcher.stop()
        self.store.dispose()

    # -- scoring -------------------------------------------------------------------------------------
    def _score_batch(self, messages: list[Message]) -> tuple[list[dict], LoadedModel]:
        loaded, routes = self.loaded, self.routes
        if loaded is None:
            raise ModelNotFoundError("no model loaded")
        self.metrics.batch_size.observe(len(messages))
        return score(loaded, routes, messages), loaded

    async def score(self, messages: list[Message]) -> tuple[list[dict], LoadedModel]:
        results, loaded = await self.batcher.submit(messages)
        self.metrics.count(results)
        return results, loaded

    async def record_predictions(self, loaded: LoadedModel, messages: list[Message],
                                 results: list[dict]) -> list[dict]:
        """Record results of messages that have an id; a (message id, version) seen before gets its first
        result back. Scoring does not wait on a broken store: it answers, logs and counts the failure."""
        items = [(m.message_id, m.text, {f: getattr(m, f) for f in MESSAGE_FIELDS}, r)
                 for m, r in zip(messages, results, strict=True) if m.message_id]
        try:
            stored = await anyio.to_thread.run_sync(record_predictions, self.store, loaded.name, loaded.version, items)
        except StoreUnavailableError as exc:
            self.metrics.unrecorded.inc(len(items))
            log.warning("predictions not recorded: %s", exc)
            return results
        return [stored.get(m.message_id, r) if m.message_id else r for m, r in zip(messages, results, strict=True)]

    # -- reloading -----------------------------------------------------------------------------------
    def _alias_version(self) -> tuple[str, str | None]:
        s = self.settings
        try:
            mv = self.client.get_model_version_by_alias(s.registered_model_name, s.model_alias)
        except MlflowException:
            raise ModelNotFoundError(f"no model {s.model_uri()} in {s.resolved_tracking_uri()}; "
                                     "train one with `triage-ml train`") from None
        return str(mv.version), mv.run_id

    async def reload_model(self, *, force: bool = False) -> bool:
        """Load the version the alias points to, if it is not the one served; True when it changed."""
        async with self._reload_lock:
            version, run_id = await anyio.to_thread.run_sync(self._alias_version)
            if not force and self.loaded is not None and self.loaded.version == version:
                return False
            s = self.settings
            model = await anyio.to_thread.run_sync(
                lambda: load_registered(f"models:/{s.registered_model_name}/{version}", backend=s.encoder_backend,
                                        threads=s.torch_threads))
            self.loaded = LoadedModel(model, s.registered_model_name, version, s.model_alias, run_id)
            self.metrics.set_model(s.registered_model_name, version)
            log.info("serving %s version %s", s.registered_model_name, version)
            return True

    def reload_routes(self) -> None:
        """Load the map again; an invalid file raises ConfigError and the current map stays in force."""
        routes = EscalationMap.from_yaml(self.settings.routing_path)
        self.routes = routes
        self._routes_mtime = _mtime(self.settings.routing_path)

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


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
