"""The escalation map in force: read again when its file changes (or on demand), replaced whole through the API,
and every version loaded recorded in the label store's map history (with a ``map.changed`` audit entry)."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import NamedTuple

from triage_ml.errors import ConfigError, ConflictError, StoreUnavailableError
from triage_ml.routing import EscalationMap
from triage_ml.store.audit import Actor
from triage_ml.store.db import Store
from triage_ml.store.routing_history import record_version

log = logging.getLogger("triage_ml.serving")
SERVICE = Actor(None, "service")


class _Unrecorded(NamedTuple):
    text: str
    source: str
    actor: Actor
    note: str | None


class MapHolder:
    """``current``: the last valid map read from ``path`` or installed through the API. An invalid file or map
    leaves it in force. A version the store could not record (it was down) is recorded at the next poll."""

    def __init__(self, path: Path, store: Store | None = None) -> None:
        self.path = path
        self.store = store
        self.current = EscalationMap.from_yaml(path)
        self._mtime = _mtime(path)
        self._lock = threading.Lock()
        self._unrecorded: _Unrecorded | None = _Unrecorded(self.current.text, "file", SERVICE, None)

    def reload(self, actor: Actor = SERVICE) -> None:
        """Read the map again; an invalid file raises ConfigError and the current map stays in force."""
        with self._lock:
            routes = EscalationMap.from_yaml(self.path)
            self.current = routes
            self._mtime = _mtime(self.path)
            self._unrecorded = _Unrecorded(routes.text, "file", actor, None)
        self.record()

    def follow_file(self) -> None:
        """Reload when the file changed since it was last read (an invalid file is reported once); record a
        version the store missed."""
        mtime = _mtime(self.path)
        if mtime != self._mtime:
            self._mtime = mtime
            try:
                self.reload()
                log.info("routing map reloaded from %s", self.path)
            except ConfigError as exc:
                log.error("routing map not reloaded, previous map stays in force: %s", exc)
        self.record()

    def install(self, text: str, actor: Actor, *, base_version: str | None = None, note: str | None = None) -> None:
        """Validate ``text`` and make it the map: the file is replaced whole (a temporary file renamed over it)
        in the transaction that records the version, so the map in force and its history agree. ConfigError
        for an invalid map, ConflictError when ``base_version`` is not the current version; either way the
        current map stays in force."""
        routes = EscalationMap.from_text(text, "yaml")
        with self._lock:
            if base_version is not None and base_version != self.current.version:
                raise ConflictError(f"base_version: the map in force is {self.current.version}, not {base_version};"
                                    " someone changed it since you read it: GET /v1/routing and apply your edit to it")
            if self.store is None:
                self._replace_file(text)
            else:
                record_version(self.store, text, "api", actor, note, before_commit=lambda: self._replace_file(text))
            self.current = routes
            self._mtime = _mtime(self.path)

    def record(self) -> None:
        """Record the version loaded last if the store has not got it yet (it may have been down)."""
        pending = self._unrecorded
        if pending is None or self.store is None:
            return
        try:
            record_version(self.store, pending.text, pending.source, pending.actor, pending.note)
        except StoreUnavailableError as exc:
            log.warning("routing map version not recorded yet, retried at the next poll: %s", exc)
            return
        if self._unrecorded is pending:
            self._unrecorded = None

    def _replace_file(self, text: str) -> None:
        try:
            mode = self.path.stat().st_mode & 0o777  # the new file keeps the old one's permissions
        except OSError:
            mode = 0o644
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
