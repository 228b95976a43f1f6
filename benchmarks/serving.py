"""Serving speed, in one run, on the same 2,000 real tweets (data/public/xci_complaints.csv):

1. raw in-process pipeline (encode + heads) of the registered model: the ceiling;
2. the service (`triage-ml serve`, uvicorn, 1 worker): batches of 32, and single messages at 1 and 16 clients;
3. `mlflow models serve` of the same registered model under the same load: the peer.

With ``--context-messages N`` (1000000 for the issue's figure) the service's label store is a fresh PostgreSQL
database holding N generated messages from ``--context-authors`` authors (``benchmarks/context.py``'s store), and
each round also sends batches of 32 and single messages that name a known author and conversation, so that the
service looks their context up: the cost of context, in the same run as without it.

Both servers run side by side and the three are measured in alternation, ``--rounds`` times (default 3),
so that a slow minute on a noisy machine hits all three alike. Prints each round, then the medians over
rounds and the ratios service/raw and service/peer (each the median of the per-round ratios), and one JSON
line. Needs a registered champion (`make run` or `triage-ml train`).
Usage: .venv/bin/python benchmarks/serving.py [--rounds 3] [--backend auto] [--context-messages 1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd

from context import generated_store  # benchmarks/context.py: the generated label store
from triage_ml.registry import client_for
from triage_ml.registry import load as load_model
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


LOADS = {"batch32": (32, 1), "single_1": (1, 1), "single_16": (1, 16)}  # name: (messages per request, clients)
CONTEXT_LOADS = {"batch32_context": (32, 1), "single_1_context": (1, 1)}  # the same, naming author and conversation


def start_server(cmd: list[str], env: dict[str, str], log: Path, ready_url: str) -> subprocess.Popen:
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(ready_url, proc)
    except BaseException:
        proc.terminate()
        raise
    return proc


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/public/xci_complaints.csv")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; figures are medians over them")
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx", "onnx-int8"],
                        help="encoder backend for all three (TRIAGE_ENCODER_BACKEND for the servers)")
    parser.add_argument("--context-messages", type=int, default=0,
                        help="also measure context lookups on a generated store of this many messages (0: off)")
    parser.add_argument("--context-authors", type=int, default=100_000)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server's admin database, for --context-messages")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        database = (stack.enter_context(generated_store(args.pg_url, args.context_messages, args.context_authors,
                                                        random.Random(7))) if args.context_messages else None)
        measure(args, database)


def measure(args: argparse.Namespace, database: str | None) -> None:
    settings = Settings()
    texts = pd.read_csv(args.data)["tweet"].astype(str).head(args.n).tolist()
    uri = settings.model_uri()
    store = settings.resolved_tracking_uri()
    env = {**os.environ, "TRIAGE_API_KEYS": f"scorer:{KEY}", "TRIAGE_MODEL_POLL_SECONDS": "0",
           "TRIAGE_MAX_BATCH": "256", "TRIAGE_RATE_LIMIT": "off",
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": store, "MLFLOW_REGISTRY_URI": settings.registry_uri or store,
           "HF_HUB_OFFLINE": "1", "TRIAGE_ENCODER_BACKEND": args.backend,
           **({"TRIAGE_DATABASE_URL": database} if database else {})}
    loads = {**LOADS, **(CONTEXT_LOADS if database else {})}
    rng = random.Random(11)

    model = load_model(client_for(settings), uri, backend=args.backend)

    def raw(chunk: list[str]) -> None:
        model.predict_frame(chunk)

    with tempfile.TemporaryDirectory() as tmp:
        service_port, peer_port = free_port(), free_port()
        procs = [start_server([str(BIN / "triage-ml"), "serve", "--port", str(service_port)], env,
                              Path(tmp) / "service.log", f"http://127.0.0.1:{service_port}/readyz")]
        try:
            procs.append(start_server([str(BIN / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local",
                                       "-h", "127.0.0.1", "-p", str(peer_port), "-w", "1"], env,
                                      Path(tmp) / "peer.log", f"http://127.0.0.1:{peer_port}/ping"))
            limits = httpx.Limits(max_connections=32)
            service = httpx.Client(base_url=f"http://127.0.0.1:{service_port}", headers={"X-API-Key": KEY},
                                   timeout=120, limits=limits)
            peer = httpx.Client(base_url=f"http://127.0.0.1:{peer_port}", timeout=120, limits=limits)

            def post_service(chunk: list[str]) -> None:
                service.post("/v1/score", json={"messages": [{"text": t} for t in chunk]}).raise_for_status()

            def post_service_context(chunk: list[str]) -> None:  # known authors and conversations of the store
                def known(text: str) -> dict:
                    author = rng.randrange(args.context_authors)
                    return {"text": text, "author": f"@u{author}", "conversation_id": f"c{author}-{rng.randrange(5)}"}

                service.post("/v1/score", json={"messages": [known(t) for t in chunk]}).raise_for_status()

            def post_peer(chunk: list[str]) -> None:
                peer.post("/invocations", json={"dataframe_split": {"columns": ["text"],
                                                                    "data": [[t] for t in chunk]}}).raise_for_status()

            for post in (raw, post_service, post_peer):
                post(texts[:32])  # warm-up
            rounds = []
            for r in range(args.rounds):
                one = {"raw": run_load(raw, texts, batch=32, clients=1)["msgs_per_s"], "service": {}, "peer": {}}
                for load, (batch, clients) in loads.items():
                    if load in CONTEXT_LOADS:
                        one["service"][load] = run_load(post_service_context, texts, batch=batch, clients=clients)
                        continue
                    one["service"][load] = run_load(post_service, texts, batch=batch, clients=clients)
                    one["peer"][load] = run_load(post_peer, texts, batch=batch, clients=clients)
                rounds.append(one)
                print(f"round {r + 1}: raw {one['raw']} msgs/s; " + "; ".join(
                    f"{who} {load} {one[who][load]['msgs_per_s']}" for load in loads for who in ("service", "peer")
                    if load in one[who]), flush=True)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)

    results: dict = {"raw": {"msgs_per_s": median([r["raw"] for r in rounds])}}
    for who in ("service", "peer"):
        results[who] = {load: {k: median([r[who][load][k] for r in rounds]) for k in ("msgs_per_s", "p50_ms", "p99_ms")}
                        for load in loads if load in rounds[0][who]}

    def ratio(top: Callable[[dict], float], bottom: Callable[[dict], float]) -> float:
        return median([top(r) / bottom(r) for r in rounds])

    results["ratios"] = {
        "service_batch32_over_raw": ratio(lambda r: r["service"]["batch32"]["msgs_per_s"], lambda r: r["raw"]),
        "service_over_peer_batch32": ratio(lambda r: r["service"]["batch32"]["msgs_per_s"],
                                           lambda r: r["peer"]["batch32"]["msgs_per_s"]),
        "service_over_peer_single_16": ratio(lambda r: r["service"]["single_16"]["msgs_per_s"],
                                             lambda r: r["peer"]["single_16"]["msgs_per_s"]),
    }
    if database:
        results["context"] = {
            "store_messages": args.context_messages, "store_authors": args.context_authors,
            "single_p50_added_ms": median([r["service"]["single_1_context"]["p50_ms"]
                                           - r["service"]["single_1"]["p50_ms"] for r in rounds]),
            "batch32_throughput_ratio": ratio(lambda r: r["service"]["batch32_context"]["msgs_per_s"],
                                              lambda r: r["service"]["batch32"]["msgs_per_s"])}
    results.update(rounds=rounds, n_messages=len(texts), model=uri, backend=args.backend, cpus=os.cpu_count())
    print(f"medians over {args.rounds} rounds; encoder backend: {args.backend}; "
          f"raw in-process: {results['raw']['msgs_per_s']} msgs/s")
    for name in ("service", "peer"):
        for load, r in results[name].items():
            print(f"{name:<8} {load:<10} {r['msgs_per_s']:>7} msgs/s  p50 {r['p50_ms']:>7} ms  p99 {r['p99_ms']:>7} ms")
    print("ratios (median of per-round ratios):", results["ratios"])
    if database:
        print("context (median over rounds):", results["context"])
    print(json.dumps(results))


if __name__ == "__main__":
    main()
