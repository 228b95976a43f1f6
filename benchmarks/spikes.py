"""Spike alerts under a flood of near-identical messages (issue 19, finding 3), in one run:

1. the detector alone: ``--n`` alike similarity vectors for one brand in one window, then as many unrelated
   ones; CPU per message, what it stores, and the memory it grew (tracemalloc);
2. the real service (`triage-ml serve`): ``--n`` near-identical actionable messages for one brand, dated
   within one window, in requests of ``--batch``; the server's VmRSS before and after, its peak, the time
   until the spike watcher has seen them all, and the cluster alert on /v1/alerts.

Prints the figures, then one JSON line. The service part needs a registered champion (`make run`), or the
TRIAGE_* settings of a store that has one. Usage:
.venv/bin/python benchmarks/spikes.py [--n 20000] [--batch 256] [--detector-only]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

from triage_ml.benchmark.spikes import ALIKE, alike_burst
from triage_ml.monitoring.spikes import SpikeDetector

BIN = Path(sys.executable).parent
KEYS = {"scorer": "bench-scorer-key-0123456789", "lead": "bench-lead-key-0123456789"}


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def feed(detector: SpikeDetector, vectors: np.ndarray, start: float, gap: float) -> float:
    """CPU seconds per message to observe ``vectors``, ``gap`` seconds apart from ``start``."""
    began = time.process_time()
    for i, vector in enumerate(vectors):
        detector.observe("Nordtel", start + i * gap, vector, 0.0, actionable=True, message_id=f"m{i}",
                         text=ALIKE.format(i))
    return (time.process_time() - began) / len(vectors)


def detector_alone(n: int) -> dict:
    rng = np.random.default_rng(0)
    alike = unit(rng.normal(size=384) + 0.2 * rng.normal(size=(n, 384)))
    detector = SpikeDetector()
    start = time.time() - 3600
    tracemalloc.start()
    alike_cpu = feed(detector, alike, start, 590 / n)
    alike_mb = tracemalloc.get_traced_memory()[0] / 1e6
    stored_alike = detector.stored()
    [alert] = detector.active()
    before = detector.comparisons
    unrelated_cpu = feed(detector, unit(rng.normal(size=(n, 384))), start + 600, 590 / n)
    unrelated_mb = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()
    return {"n": n, "alike_cpu_us_per_msg": round(alike_cpu * 1e6, 1), "alike_traced_mb": round(alike_mb, 2),
            "alike_stored": stored_alike, "alert": [alert["kind"], alert["value"]],
            "unrelated_cpu_us_per_msg": round(unrelated_cpu * 1e6, 1), "unrelated_traced_mb": round(unrelated_mb, 2),
            "unrelated_stored": detector.stored(),
            "comparisons_per_msg": round((detector.comparisons - before) / n, 1)}


def memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _serving_helpers() -> tuple:
    """free_port and wait_ready from the serving benchmark (by path: ``serving`` is the service's package)."""
    spec = importlib.util.spec_from_file_location("serving_benchmark", Path(__file__).with_name("serving.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.free_port, module.wait_ready


free_port, wait_ready = _serving_helpers()


def flood(client: httpx.Client, brand: str, n: int, batch: int, start: datetime,
          seconds: float) -> tuple[int, datetime]:
    """Send the burst; how many the model found actionable, and the last message's time."""
    actionable = 0
    for rows in alike_burst(brand, n, start, seconds, batch):
        r = client.post("/v1/score", json={"messages": rows}, headers={"X-API-Key": KEYS["scorer"]})
        r.raise_for_status()
        actionable += sum(x["actionable"] for x in r.json()["results"])
    return actionable, datetime.fromisoformat(rows[-1]["created_at"])


def watched(client: httpx.Client, as_of: datetime, timeout: float = 900) -> dict:
    """/v1/alerts once the watcher has seen every message up to ``as_of``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = client.get("/v1/alerts", headers={"X-API-Key": KEYS["lead"]}).json()
        if now["as_of"] and datetime.fromisoformat(now["as_of"]) >= as_of.replace(microsecond=0):
            return now
        time.sleep(0.5)
    raise SystemExit(f"the spike watcher did not reach {as_of} in {timeout} s")


def through_service(n: int, batch: int) -> dict:
    env = {**os.environ, "TRIAGE_API_KEYS": ",".join(f"{r}:{k}" for r, k in KEYS.items()),
           "TRIAGE_MODEL_POLL_SECONDS": "0", "TRIAGE_MAX_BATCH": str(batch), "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        env["TRIAGE_DATABASE_URL"] = f"sqlite:///{Path(tmp) / 'triage.db'}"
        port = free_port()
        with (Path(tmp) / "service.log").open("w") as log:
            proc = subprocess.Popen([str(BIN / "triage-ml"), "serve", "--port", str(port)], env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(f"{url}/readyz", proc)
            with httpx.Client(base_url=url, timeout=300) as client:
                now = datetime.now(UTC)
                _, warm = flood(client, "warm-up", batch, batch, now - timedelta(minutes=30), 60)
                watched(client, warm)
                start_mb, start_cpu, began = memory_mb(proc.pid, "VmRSS"), cpu_seconds(proc.pid), time.perf_counter()
                actionable, last = flood(client, "Nordtel", n, batch, now - timedelta(minutes=10), 590)
                sent = time.perf_counter() - began
                alerts = watched(client, last)["alerts"]
                seconds = time.perf_counter() - began
                skipped = [line for line in client.get("/metrics").text.splitlines()
                           if line.startswith("triage_spikes_skipped_total")]
                figures = {"n": n, "batch": batch, "actionable": actionable, "seconds_sent": round(sent, 1),
                           "seconds_watched": round(seconds, 1), "msgs_per_s": round(n / seconds, 1),
                           "server_cpu_s": round(cpu_seconds(proc.pid) - start_cpu, 1),
                           "rss_start_mb": round(start_mb), "rss_end_mb": round(memory_mb(proc.pid, "VmRSS")),
                           "rss_peak_mb": round(memory_mb(proc.pid, "VmHWM")),
                           "skipped": float(skipped[0].split()[-1]) if skipped else None,
                           "alerts": [(a["brand"], a["kind"], a["value"]) for a in alerts]}
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="messages in the flood")
    parser.add_argument("--batch", type=int, default=256, help="messages per /v1/score request (max_batch)")
    parser.add_argument("--detector-only", action="store_true", help="skip the service")
    args = parser.parse_args()
    results = {"detector": detector_alone(args.n)}
    d = results["detector"]
    print(f"detector alone, {args.n:,} alike: {d['alike_cpu_us_per_msg']} us/msg CPU, {d['alike_traced_mb']} MB "
          f"traced, stored {d['alike_stored']}, alert {d['alert']}; then {args.n:,} unrelated: "
          f"{d['unrelated_cpu_us_per_msg']} us/msg, {d['comparisons_per_msg']} comparisons/msg, "
          f"{d['unrelated_traced_mb']} MB traced, stored {d['unrelated_stored']}", flush=True)
    if not args.detector_only:
        s = results["service"] = through_service(args.n, args.batch)
        print(f"service, {s['n']:,} alike in requests of {s['batch']} ({s['actionable']:,} actionable): sent in "
              f"{s['seconds_sent']} s, watched in {s['seconds_watched']} s ({s['msgs_per_s']} msgs/s, server CPU "
              f"{s['server_cpu_s']} s); VmRSS {s['rss_start_mb']} -> {s['rss_end_mb']} MB (peak "
              f"{s['rss_peak_mb']} MB); skipped {s['skipped']}; alerts {s['alerts']}")
    results["cpus"] = os.cpu_count()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
