"""The abuse suite: each finding of the hostile-traffic probe replayed against the real service (uvicorn on
loopback, a real MLflow store, a real label store), bounded in requests and time. Memory is read from the
server process itself (``VmRSS``/``VmHWM`` in /proc), never from the test's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.service_fixtures import RunningService


def process_memory_mb(pid: int, field: str = "VmRSS") -> float:
    """``field`` (VmRSS: now, VmHWM: peak) of process ``pid`` in MB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


@pytest.fixture(scope="module")
def start_service(trained_store, tmp_path_factory) -> Iterator[Callable[..., RunningService]]:
    """Starts the real service with extra ``TRIAGE_*`` settings; every one started is stopped at the end."""
    settings, _ = trained_store
    started: list[RunningService] = []

    def start(**env: str) -> RunningService:
        running = RunningService(settings, tmp_path_factory.mktemp("abuse"), **env).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture(scope="module")
def service(start_service) -> RunningService:
    """One service with the shipped defaults, shared by a module's tests."""
    return start_service()
