"""Start the real service (`triage-ml serve`, uvicorn) on a free loopback port against a real MLflow store."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

KEYS = {"scorer": "scorer-key-0123456789abcdef", "agent": "agent-key-0123456789abcdef",
        "lead": "lead-key-0123456789abcdef", "admin": "admin-key-0123456789abcdef"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}{wait_for}", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"service not ready in {timeout} s: {self.log.read_text()[-2000:]}")

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
