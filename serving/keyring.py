"""Who may call: the settings' API keys (service accounts) and the personal keys active in the store."""

from __future__ import annotations

import asyncio
import logging

import anyio
from sqlalchemy.exc import SQLAlchemyError

from triage_ml.errors import ConfigError, StoreUnavailableError
from triage_ml.settings import Settings
from triage_ml.store.db import Store
from triage_ml.store.keys import Identity, active_keys

log = logging.getLogger("triage_ml.serving")


class KeyRing:
    """``keys``: TRIAGE_API_KEYS' (role, key) pairs. ``people``: SHA-256 of each active personal key -> its role and
    person (store/keys.py). The guard reads ``people`` on the event loop for every request, so the store is not
    queried per request: the service's poller calls ``refresh`` every routing_poll_seconds, and the admin API at
    once after it creates or revokes a key."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.keys = settings.keys()
        if not self.keys:
            raise ConfigError("no API keys configured: set TRIAGE_API_KEYS to role:key pairs "
                              "(scorer, agent, lead, admin); `make run` writes development keys to .env")
        self.store = store
        self.people: dict[str, Identity] = {}
        self._stale = False
        self._lock = asyncio.Lock()  # one read at a time, so an older read never replaces a newer one

    async def refresh(self) -> None:
        """Re-read the active personal keys. When the store cannot be read, the last keys read stay in force
        (a revocation then waits for the store) and the failure is logged once."""
        async with self._lock:
            try:
                people = await anyio.to_thread.run_sync(active_keys, self.store)
            except (StoreUnavailableError, SQLAlchemyError) as exc:
                if not self._stale:
                    log.warning("personal API keys not re-read, the last %d read stay in force: %s",
                                len(self.people), str(exc).splitlines()[0])
                self._stale = True
                return
            if self._stale:
                log.info("personal API keys re-read: %d active", len(people))
            self.people, self._stale = people, False
