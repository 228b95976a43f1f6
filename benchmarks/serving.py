"""Serving speed, in one run, on the same 2,000 real tweets (../shared/data/public/xci_complaints.csv):

1. raw in-process pipeline (encode + heads) of the registered model: the ceiling;
2. the service (`triage-ml serve`, uvicorn, 1 worker): batches of 32, and single messages at 1 and 16 clients;
3. `mlflow models serve` of the same registered model under the same load: the peer.

Prints a table and one JSON line with msgs/s, p50/p99 latency and the ratios service/raw, service/peer.
Needs a registered champion (`make run` or `triage-ml train`). Usage: .venv/bin/python benchmarks/serving.py
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd

from triage_ml.model.pyfunc import load_registered
from triage_ml.pipeline.tracking import connect_mlflow
from triage_ml.settings import Settings

BIN = Path(sys.executable).parent
KEY = "bench-scorer-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise SystemExit(f"{url} not ready in {timeout} s")


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def run_load(post: Callable[[list[str]], None], texts: list[str], *, batch: int, clients: int) -> dict:
    """Send ``texts`` in requests of ``batch`` from ``clients`` threads; msgs/s and per-request latency."""
    chunks = [texts[i:i + batch] for i in range(0, len(texts), batch)]
    latencies: list[float] = []

    def one(chunk: list[str]) -> None:
        start = time.perf_counter()
        post(chunk)
        latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, chunks))
    elapsed = time.perf_counter() - start
    return {"msgs_per_s": round(len(texts) / elapsed, 1), "p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "p99_ms": round(percentile(latencies, 99) * 1000, 1)}


def measure(post: Callable[[list[str]], None], texts: list[str]) -> dict:
    post(texts[:32])  # warm-up
    return {"batch32": run_load(post, texts, batch=32, clients=1),
            "single_1": run_load(post, texts, batch=1, clients=1),
            "single_16": run_load(post, texts, batch=1, clients=16)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/public/xci_complaints.csv")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx", "onnx-int8"],
                        help="encoder backend for all three (TRIAGE_ENCODER_BACKEND for the servers)")
    args = parser.parse_args()
    settings = Settings()
    connect_mlflow(settings)
    texts = pd.read_csv(args.data)["tweet"].astype(str).head(args.n).tolist()
    uri = settings.model_uri()

    model = load_registered(uri, backend=args.backend)
    model.predict_frame(texts[:32])
    start = time.perf_counter()
    for i in range(0, len(texts), 32):
        model.predict_frame(texts[i:i + 32])
    raw = {"msgs_per_s": round(len(texts) / (time.perf_counter() - start), 1)}
    del model

    env = {**os.environ, "TRIAGE_API_KEYS": f"scorer:{KEY}", "TRIAGE_MODEL_POLL_SECONDS": "0",
           "TRIAGE_MAX_BATCH": "256", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": settings.resolved_tracking_uri(), "HF_HUB_OFFLINE": "1",
           "TRIAGE_ENCODER_BACKEND": args.backend}
    results = {"raw": raw}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        with open(Path(tmp) / "service.log", "w") as log:
            proc = subprocess.Popen([str(BIN / "triage-ml"), "serve", "--port", str(port)], env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": KEY}, timeout=120,
                                  limits=httpx.Limits(max_connections=32))

            def post_service(chunk: list[str]) -> None:
                r = client.post("/v1/score", json={"messages": [{"text": t} for t in chunk]})
                r.raise_for_status()

            results["service"] = measure(post_service, texts)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

        port = free_port()
        with open(Path(tmp) / "peer.log", "w") as log:
            proc = subprocess.Popen([str(BIN / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local",
                                     "-h", "127.0.0.1", "-p", str(port), "-w", "1"], env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
        try:
            wait_ready(f"http://127.0.0.1:{port}/ping", proc)
            peer = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                                limits=httpx.Limits(max_connections=32))

            def post_peer(chunk: list[str]) -> None:
                r = peer.post("/invocations", json={"dataframe_split": {"columns": ["text"],
                                                                        "data": [[t] for t in chunk]}})
                r.raise_for_status()

            results["peer"] = measure(post_peer, texts)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    svc, peer = results["service"], results["peer"]
    results["ratios"] = {
        "service_batch32_over_raw": round(svc["batch32"]["msgs_per_s"] / raw["msgs_per_s"], 2),
        "service_over_peer_batch32": round(svc["batch32"]["msgs_per_s"] / peer["batch32"]["msgs_per_s"], 2),
        "service_over_peer_single_16": round(svc["single_16"]["msgs_per_s"] / peer["single_16"]["msgs_per_s"], 2),
    }
    results.update(n_messages=len(texts), model=uri, backend=args.backend, cpus=os.cpu_count())
    print(f"encoder backend: {args.backend}; raw in-process: {raw['msgs_per_s']} msgs/s")
    for name in ("service", "peer"):
        for load, r in results[name].items():
            print(f"{name:<8} {load:<10} {r['msgs_per_s']:>7} msgs/s  p50 {r['p50_ms']:>7} ms  p99 {r['p99_ms']:>7} ms")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
