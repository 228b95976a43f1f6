"""Batch scoring speed, in one run, on the same real tweets (data/public/xci_complaints.csv):

1. `triage-ml score-batch` (CSV in, Parquet out, the API's fields);
2. Spark `local[2]` through the registered pyfunc (`triage_ml.spark.score`);
3. the scoring API (`triage-ml serve`) in batches of 32 and of 256; its best figure is the bar.

Prints msgs/s for each and the ratios to the API's best batch figure, then one JSON line. Needs a registered
champion (`make run`). Usage: .venv/bin/python benchmarks/batch.py [--n 3448]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import httpx
import pandas as pd

from triage_ml.settings import Settings

BIN = Path(sys.executable).parent


def _serving_benchmark() -> ModuleType:
    """The serving benchmark's load helpers (loaded by path: the name `serving` is the service's package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("serving_benchmark", Path(__file__).with_name("serving.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_bench = _serving_benchmark()
KEY, free_port, run_load, wait_ready = _bench.KEY, _bench.free_port, _bench.run_load, _bench.wait_ready


def score_batch(source: Path, out: Path, env: dict) -> dict:
    start = time.perf_counter()
    run = subprocess.run([str(BIN / "triage-ml"), "score-batch", str(source), "--out", str(out), "--no-progress",
                          "--restart"], env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    rate = float(run.stdout.split(" msgs/s")[0].rsplit("(", 1)[1].split(", ")[-1])
    return {"msgs_per_s": rate, "wall_s_with_model_load": round(wall, 1), "report": run.stdout.strip()}


def spark(texts: list[str], settings: Settings) -> dict:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    from triage_ml.spark import score

    session = (SparkSession.builder.master("local[2]").appName("triage-ml batch benchmark")
               .config("spark.ui.enabled", "false").getOrCreate())
    try:
        df = session.createDataFrame(pd.DataFrame({"text": texts})).repartition(2).cache()
        df.count()
        start = time.perf_counter()
        score(df, settings=settings).write.format("noop").mode("overwrite").save()
        elapsed = time.perf_counter() - start
    finally:
        session.stop()
    return {"msgs_per_s": round(len(texts) / elapsed, 1), "partitions": 2}


def api(texts: list[str], env: dict) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "service.log", "w") as log:
        proc = subprocess.Popen([str(BIN / "triage-ml"), "serve", "--port", str(port)], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": KEY}, timeout=300)

            def post(chunk: list[str]) -> None:
                client.post("/v1/score", json={"messages": [{"text": t} for t in chunk]}).raise_for_status()

            post(texts[:32])
            return {"batch32": run_load(post, texts, batch=32, clients=1),
                    "batch256": run_load(post, texts, batch=256, clients=1)}
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/public/xci_complaints.csv")
    parser.add_argument("--n", type=int, default=3448)
    args = parser.parse_args()
    settings = Settings()
    texts = pd.read_csv(args.data)["tweet"].astype(str).head(args.n).tolist()
    env = {**os.environ, "TRIAGE_API_KEYS": f"scorer:{KEY}", "TRIAGE_MODEL_POLL_SECONDS": "0",
           "TRIAGE_RATE_LIMIT": "off", "TRIAGE_MAX_BATCH": "256", "HF_HUB_OFFLINE": "1"}
    results: dict = {"n_messages": len(texts), "distinct_texts": len(set(texts)), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "messages.csv"
        pd.DataFrame({"message_id": [f"m{i}" for i in range(len(texts))], "text": texts}).to_csv(source, index=False)
        results["score_batch"] = score_batch(source, Path(tmp) / "scored.parquet", env)
    results["spark_local2"] = spark(texts, settings)
    results["api"] = api(texts, env)
    best = max(r["msgs_per_s"] for r in results["api"].values())
    results["ratios"] = {"score_batch_over_api_best": round(results["score_batch"]["msgs_per_s"] / best, 2),
                         "spark_over_api_best": round(results["spark_local2"]["msgs_per_s"] / best, 2)}
    print(f"{len(texts)} tweets ({results['distinct_texts']} distinct), {os.cpu_count()} cpus")
    print(f"score-batch      {results['score_batch']['msgs_per_s']:>7} msgs/s")
    print(f"spark local[2]   {results['spark_local2']['msgs_per_s']:>7} msgs/s")
    for name, r in results["api"].items():
        print(f"api {name:<12} {r['msgs_per_s']:>7} msgs/s  p50 {r['p50_ms']} ms")
    print(f"ratios to the API's best batch figure: {results['ratios']}")
    print(json.dumps({k: v for k, v in results.items() if k != "score_batch"} |
                     {"score_batch": {k: v for k, v in results["score_batch"].items() if k != "report"}}))


if __name__ == "__main__":
    main()
