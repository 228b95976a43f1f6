"""The model holder: the served model and the shadow model, each following its registry alias.

A model is swapped by assigning a new ``LoadedModel``: a batch takes its reference when it starts, so requests
in flight finish on the old model and every response names the version that produced it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import anyio
from mlflow import MlflowClient

from triage_ml.registry import alias_version, load, resolve
from triage_ml.scoring import LoadedModel
from triage_ml.settings import Settings

log = logging.getLogger("triage_ml.serving")

# (version, run id, alias) -> the model, loaded. The default reads the registry; tests and tools may pass another.
Loader = Callable[[str, str | None, str], LoadedModel]


class ModelHolder:
    """``loaded`` (the alias's version) and ``shadow`` (``shadow_alias``'s, when set)."""

    def __init__(self, settings: Settings, client: MlflowClient, loader: Loader | None = None,
                 on_change: Callable[[LoadedModel], None] | None = None) -> None:
        self.settings, self.client = settings, client
        self.loader: Loader = loader or self._from_registry
        self.on_change = on_change  # told of each newly served model (the metrics' model gauge)
        self.loaded: LoadedModel | None = None
        self.shadow: LoadedModel | None = None
        self._lock = asyncio.Lock()

    def _from_registry(self, version: str, run_id: str | None, alias: str) -> LoadedModel:
        s = self.settings
        model = load(self.client, f"models:/{s.registered_model_name}/{version}", backend=s.encoder_backend,
                     threads=s.torch_threads)
        return LoadedModel(model, s.registered_model_name, version, alias, run_id)

    async def reload(self, *, force: bool = False) -> bool:
        """Load the version the alias points to, if it is not the one served; True when it changed. The shadow
        follows its own alias the same way. ModelNotFoundError when the alias points nowhere."""
        async with self._lock:
            s = self.settings
            mv = await anyio.to_thread.run_sync(resolve, self.client, s.registered_model_name, s.model_alias)
            await self._reload_shadow()
            version = str(mv.version)
            if not force and self.loaded is not None and self.loaded.version == version:
                return False
            self.loaded = await anyio.to_thread.run_sync(self.loader, version, mv.run_id, s.model_alias)
            if self.on_change is not None:
                self.on_change(self.loaded)
            log.info("serving %s version %s", s.registered_model_name, version)
            return True

    async def _reload_shadow(self) -> None:
        alias, name = self.settings.shadow_alias, self.settings.registered_model_name
        if not alias:
            return
        mv = await anyio.to_thread.run_sync(alias_version, self.client, name, alias)
        if mv is None:
            if self.shadow is not None:
                log.info("shadow alias %s is gone; shadow scoring stops", alias)
            self.shadow = None
            return
        if self.shadow is None or self.shadow.version != str(mv.version):
            self.shadow = await anyio.to_thread.run_sync(self.loader, str(mv.version), mv.run_id, alias)
            log.info("shadow scoring with %s version %s (%s)", name, mv.version, alias)

    def registry_reachable(self) -> bool:
        try:
            self.client.get_registered_model(self.settings.registered_model_name)
            return True
        except Exception:
            return False
