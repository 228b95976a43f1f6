"""Start the real service against a real MLflow store: ``RunningService`` runs `triage-ml serve` (uvicorn) on a
free loopback port, for what needs a real server (reload under load, SIGKILL, webhooks from Label Studio,
body streaming); ``InProcessService`` runs the same app in this process through FastAPI's TestClient, for the
contract (auth, roles, limits, validation messages, the response's fields). ``free_port`` and
``wait_until_up`` serve the other real servers the tests start (Label Studio, the peer)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

KEYS = {"scorer": "scorer-key-0123456789abcdef", "agent": "agent-key-0123456789abcdef",
        "lead": "lead-key-0123456789abcdef", "admin": "admin-key-0123456789abcdef"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(proc: subprocess.Popen, url: str, log: Path, *, timeout: float, interval: float = 0.5) -> None:
    """Poll ``url`` until it answers 200. RuntimeError with the tail of ``log`` if ``proc`` exits first or
    ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s: {log.read_text()[-2000:]}")


class RunningService:
    def __init__(self, settings, workdir: Path, **env: str) -> None:
        self.routing = workdir / "routing.yaml"
        shutil.copy(Path("serving/routing.yaml"), self.routing)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "TRIAGE_MLRUNS_DIR": str(settings.mlruns_dir),
                    "TRIAGE_EXPERIMENT_NAME": settings.experiment_name, "TRIAGE_CACHE_DIR": str(settings.cache_dir),
                    "TRIAGE_API_KEYS": ",".join(f"{r}:{k}" for r, k in KEYS.items()),
                    "TRIAGE_ROUTING_PATH": str(self.routing),
                    "TRIAGE_DATABASE_URL": f"sqlite:///{(workdir / 'triage.db').as_posix()}", **env}
        self.log = workdir / "service.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120, wait_for: str = "/readyz") -> RunningService:
        cli = str(Path(sys.executable).parent / "triage-ml")
        with self.log.open("w") as out:
            self.proc = subprocess.Popen([cli, "serve", "--port", str(self.port)], env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT)
        try:
            wait_until_up(self.proc, f"{self.url}{wait_for}", self.log, timeout=timeout)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def client(self, role: str | None = "scorer") -> httpx.Client:
        headers = {"X-API-Key": KEYS[role]} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def alerts(service: RunningService) -> dict:
    """GET /v1/alerts as a lead."""
    with service.client("lead") as c:
        r = c.get("/v1/alerts")
    assert r.status_code == 200, r.text
    return r.json()


def wait_for(service: RunningService, as_of: datetime, timeout: float = 120) -> dict:
    """The alerts once the spike watcher has seen every message up to ``as_of``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = alerts(service)
        if now["as_of"] and datetime.fromisoformat(now["as_of"]) >= as_of.replace(microsecond=0):
            return now
        time.sleep(0.3)
    raise AssertionError(f"the spike watcher did not reach {as_of} in {timeout} s")


class InProcessService:
    """The app of ``serving.main.create_app`` with the same settings a RunningService gets, served in this process
    (its lifespan runs: the model is loaded from the registry, the label store migrated). Use as a context
    manager; ``client(role)`` answers like RunningService's, and ``log`` collects what the app logged."""

    def __init__(self, settings, workdir: Path, **overrides) -> None:
        import logging

        from triage_ml.settings import Settings

        self.routing = workdir / "routing.yaml"
        shutil.copy(Path("serving/routing.yaml"), self.routing)
        self.settings = Settings(**{
            "mlruns_dir": settings.mlruns_dir, "experiment_name": settings.experiment_name,
            "cache_dir": settings.cache_dir, "api_keys": ",".join(f"{r}:{k}" for r, k in KEYS.items()),
            "routing_path": self.routing, "database_url": f"sqlite:///{(workdir / 'triage.db').as_posix()}",
            **overrides})
        self.log = workdir / "service.log"
        self._handler = logging.FileHandler(self.log)
        self._client = None

    def __enter__(self) -> InProcessService:
        import logging

        from fastapi.testclient import TestClient
        from serving.main import create_app

        logging.getLogger().addHandler(self._handler)
        self._client = TestClient(create_app(self.settings)).__enter__()
        return self

    def __exit__(self, *exc) -> None:
        import logging

        self._client.__exit__(*exc)
        logging.getLogger().removeHandler(self._handler)
        self._handler.close()

    def client(self, role: str | None = "scorer") -> _RoleClient:
        return _RoleClient(self._client, {"X-API-Key": KEYS[role]} if role else {})


class _RoleClient:
    """Requests through the shared TestClient with one role's key (``with`` changes nothing: the app keeps
    running for the module)."""

    def __init__(self, client, headers: dict[str, str]) -> None:
        self._client, self._headers = client, headers

    def __enter__(self) -> _RoleClient:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        return self._client.request(method, url, headers={**self._headers, **kwargs.pop("headers", {})}, **kwargs)

    def get(self, url: str, **kwargs) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)
