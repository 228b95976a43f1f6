"""`triage-ml score-batch` on real files: the API's fields, rejects with reasons, resume, constant memory."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import XCI
from tests.integration.service_fixtures import RunningService

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).parent / "triage-ml")


@pytest.fixture(scope="module")
def env(trained_store):
    settings, _ = trained_store
    return {**os.environ, "TRIAGE_MLRUNS_DIR": str(settings.mlruns_dir), "TRIAGE_CACHE_DIR": str(settings.cache_dir),
            "TRIAGE_EXPERIMENT_NAME": settings.experiment_name}


def score_batch(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "score-batch", *args, "--no-progress"], env=env, capture_output=True, text=True,
                          timeout=1200)


def messages(seed: pd.DataFrame) -> pd.DataFrame:
    return seed[["message_id", "text", "channel", "brand", "author", "created_at"]].astype(str)


def test_rows_get_the_apis_answers_and_bad_rows_a_reason(env, trained_store, seed, tmp_path):
    good = messages(seed.iloc[7:400:10])
    # two rows answer a brand's turn (the optional thread columns): the thread head reads them, as in the API
    good["in_reply_to_text"] = ["did the replacement card arrive?", "anything else we can help with?"] + [""] * (
        len(good) - 2)
    good["in_reply_to_from"] = ["brand", "brand"] + [""] * (len(good) - 2)
    bad = pd.DataFrame([
        {"message_id": "bad-1", "text": ""}, {"message_id": "bad-2", "text": "   "},
        {"message_id": "bad-3", "text": "x" * 10_001}, {"message_id": "bad-4", "text": "hi", "created_at": "yesterday"},
        {"message_id": "bad-5", "text": "hi", "is_private": "maybe"},
        {"message_id": "bad-6", "text": "nope", "in_reply_to_text": "did it come?", "in_reply_to_from": "agent"}])
    source = tmp_path / "in.csv"
    pd.concat([good.iloc[:20], bad, good.iloc[20:]]).to_csv(source, index=False)
    run = score_batch(env, str(source), "--out", str(tmp_path / "out.csv"), "--chunk-size", "16")
    assert run.returncode == 0, run.stderr
    assert f"read {len(good) + 6} rows: {len(good)} scored" in run.stdout and "6 rejected" in run.stdout

    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False, dtype={"message_id": str})
    assert list(out["message_id"]) == list(good["message_id"])  # input order, rows numbered as read
    assert list(out["row"]) == [*range(1, 21), *range(27, len(good) + 7)]
    assert out["thread_used"].tolist() == [True, True] + [False] * (len(good) - 2)
    rejects = [json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text().splitlines()]
    reasons = {json.loads(r["record"])["message_id"]: r["reason"] for r in rejects}
    assert "text is empty or whitespace only" in reasons["bad-1"] and "text is empty" in reasons["bad-2"]
    assert reasons["bad-3"].startswith("text: ") and "the limit is 10,000" in reasons["bad-3"]
    assert reasons["bad-4"].startswith("created_at: ") and reasons["bad-5"].startswith("is_private: ")
    assert reasons["bad-6"].startswith("in_reply_to_from: ")  # the file's column, not the API's field
    assert [r["row"] for r in rejects] == [21, 22, 23, 24, 25, 26]

    settings, outcome = trained_store
    service = RunningService(settings, tmp_path, TRIAGE_MODEL_POLL_SECONDS="0").start()
    try:
        with service.client("scorer") as c:
            api = c.post("/v1/score", json={"messages": [
                {"text": r.text, "message_id": r.message_id, "channel": r.channel, "brand": r.brand,
                 "author": r.author, **({"in_reply_to": {"text": r.in_reply_to_text, "from": r.in_reply_to_from}}
                                        if r.in_reply_to_text else {})} for r in good.itertuples()]}).json()["results"]
    finally:
        service.stop()
    for row, answer in zip(out.itertuples(), api, strict=True):
        assert (row.actionable, row.crisis) == (answer["actionable"], answer["crisis"])
        assert (None if row.priority_tier == "" else int(row.priority_tier)) == answer["priority_tier"]
        assert row.crisis_risk == pytest.approx(answer["crisis_risk"], abs=1e-6)
        assert (row.route_action, row.route_rule) == (answer["route"]["action"], answer["route"]["rule"])
        assert row.explanation == answer["explanation"]["summary"]
        assert str(row.model_version) == outcome.version


@pytest.mark.parametrize(("src", "dst"), [("jsonl", "parquet"), ("parquet", "jsonl")])
def test_jsonl_and_parquet_in_and_out(env, seed, tmp_path, src, dst):
    frame = messages(seed.iloc[:30])
    source = tmp_path / f"in.{src}"
    if src == "jsonl":
        lines = [json.dumps(r) for r in frame.to_dict(orient="records")]
        lines[3:3] = ["{not json", "[1, 2]"]  # two lines that are not message records
        source.write_text("\n".join(lines) + "\n")
    else:
        frame.to_parquet(source, index=False)
    run = score_batch(env, str(source), "--out", str(tmp_path / f"out.{dst}"), "--chunk-size", "8")
    assert run.returncode == 0, run.stderr
    out = pd.read_parquet(tmp_path / "out.parquet") if dst == "parquet" else \
        pd.read_json(tmp_path / "out.jsonl", lines=True, dtype={"message_id": str})
    assert list(out["message_id"]) == list(frame["message_id"]) and out["actionable"].notna().all()
    if src == "jsonl":
        rejects = (tmp_path / "out.rejects.jsonl").read_text().splitlines()
        assert len(rejects) == 2 and "is not JSON" in rejects[0] and "not a JSON object" in rejects[1]


def test_an_interrupted_run_resumes_without_losing_or_doubling_rows(env, seed, tmp_path):
    rng = np.random.default_rng(1)
    n, chunk = 800, 50
    frame = pd.DataFrame({"message_id": [f"r{i}" for i in range(n)], "text": rng.choice(seed["text"], n)})
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    out, progress = tmp_path / "out.csv", tmp_path / "out.csv.progress.json"
    proc = subprocess.Popen([CLI, "score-batch", str(source), "--out", str(out), "--chunk-size", str(chunk),
                             "--no-progress"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if progress.is_file() and json.loads(progress.read_text())["chunks"] >= 3:
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = json.loads(progress.read_text())["chunks"]
    assert 3 <= done_before < n / chunk

    again = score_batch(env, str(source), "--out", str(out), "--chunk-size", str(chunk))
    assert again.returncode == 0, again.stderr
    assert f"read {n} rows: {n} scored" in again.stdout and not progress.exists()
    resumed = pd.read_csv(out, keep_default_na=False)
    assert list(resumed["row"]) == list(range(1, n + 1))  # each row once, in order
    fresh = score_batch(env, str(source), "--out", str(tmp_path / "fresh.csv"), "--chunk-size", str(chunk))
    assert fresh.returncode == 0, fresh.stderr
    # the same answers; probabilities to float noise (~1e-7: texts are encoded with other batch companions,
    # so padded lengths differ, after a resume)
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(tmp_path / "fresh.csv"), check_exact=False,
                                  rtol=0, atol=1e-6)
    # a finished output is not overwritten by accident
    refused = score_batch(env, str(source), "--out", str(out))
    assert refused.returncode == 2 and "exists; use --restart" in refused.stderr


def test_60000_rows_in_constant_memory(env, seed, tmp_path):
    """A backlog of 60,000 posts (12 chunks of 5,000) drawn from 4,999 real texts (seed set and public tweets),
    with repeats as social backlogs have. Memory is measured by the command itself (peak resident set), not
    timed. The growth bound is per row after the first 5 chunks, as strict as 100 MB over the 175,000 rows that
    followed them in the 200,000-row file this test used to score."""
    texts = pd.concat([seed["text"], pd.read_csv(XCI)["tweet"]]).tolist()
    rng = np.random.default_rng(7)
    n, chunk = 60_000, 5_000
    pd.DataFrame({"message_id": [f"b{i}" for i in range(n)], "text": rng.choice(texts, n),
                  "brand": rng.choice(["SkyLark Air", "Nordtel", "Munchly", "Harbor Bank"], n),
                  "author": rng.choice([f"user{i}" for i in range(5000)], n)}).to_csv(tmp_path / "big.csv", index=False)
    run = score_batch(env, str(tmp_path / "big.csv"), "--out", str(tmp_path / "big.parquet"), "--chunk-size",
                      str(chunk))
    assert run.returncode == 0, run.stderr
    assert f"read {n} rows: {n} scored" in run.stdout
    found = re.search(r"peak memory (\d+) MB \((\d+) MB after the first 5 chunks", run.stdout)
    peak, early = float(found[1]), float(found[2])
    assert peak < 1500, f"peak memory {peak} MB"  # the bound stated in the README
    allowed = 100 * (n - 5 * chunk) / 175_000  # MB: 20 for the 35,000 rows after the first 5 chunks
    assert peak - early < allowed, f"memory grew from {early} MB to {peak} MB over the file (bound {allowed} MB)"
    import pyarrow.parquet as pq

    assert pq.ParquetFile(tmp_path / "big.parquet").metadata.num_rows == n
