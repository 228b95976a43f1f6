"""The escalation map in force, read again when its file changes (or on demand)."""

from __future__ import annotations

import logging
from pathlib import Path

from triage_ml.errors import ConfigError
from triage_ml.routing import EscalationMap

log = logging.getLogger("triage_ml.serving")


class MapHolder:
    """``current``: the last valid map read from ``path``. An invalid file leaves it in force."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current = EscalationMap.from_yaml(path)
        self._mtime = _mtime(path)

    def reload(self) -> None:
        """Read the map again; an invalid file raises ConfigError and the current map stays in force."""
        routes = EscalationMap.from_yaml(self.path)
        self.current = routes
        self._mtime = _mtime(self.path)

    def follow_file(self) -> None:
        """Reload when the file changed since it was last read; an invalid file is reported once."""
        mtime = _mtime(self.path)
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            self.reload()
            log.info("routing map reloaded from %s", self.path)
        except ConfigError as exc:
            log.error("routing map not reloaded, previous map stays in force: %s", exc)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
