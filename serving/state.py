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
from triage_ml.errors import ConfigError, ModelNotFoundError
from triage_ml.model.pyfunc import load_registered
from triage_ml.pipeline.tracking import connect_mlflow
from triage_ml.routing import EscalationMap
from triage_ml.scoring import LoadedModel, Message, score
from triage_ml.settings import Settings

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

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.reload_model(force=True)
        self.batcher.start()
        self._poller = asyncio.create_task(self._poll(), name="reload-poller")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.batcher.stop()

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

    def store_reachable(self) -> bool:
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
