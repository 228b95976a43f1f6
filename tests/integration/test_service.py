"""The scoring API, served by uvicorn on a loopback port, against a real MLflow store and registry: what needs a
real server (the map's file poller, concurrent clients sharing batches, the alias poller, start-up). The API's
contract is tested in process (test_api_contract.py)."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import time
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient

from tests.conftest import copy_store
from tests.integration.service_fixtures import RunningService
from triage_ml.pipeline.tracking import connect_mlflow

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service_store(trained_store, tmp_path_factory):
    """A copy of the shared store for this module's service: a test here registers a version and moves the
    champion alias."""
    settings, outcome = trained_store
    return copy_store(settings, tmp_path_factory.mktemp("service-store")), outcome


@pytest.fixture(scope="module")
def service(service_store, tmp_path_factory):
    settings, _ = service_store
    running = RunningService(settings, tmp_path_factory.mktemp("service"), TRIAGE_MAX_BATCH="8",
                             TRIAGE_MAX_BODY_BYTES="200000", TRIAGE_MODEL_POLL_SECONDS="1",
                             TRIAGE_ROUTING_POLL_SECONDS="0.3").start()
    yield running
    running.stop()


def score(service, *messages, role="scorer"):
    with service.client(role) as c:
        return c.post("/v1/score", json={"messages": list(messages)})


def test_routing_map_reloads_and_refuses_invalid_yaml(service):
    original = service.routing.read_text()
    try:
        service.routing.write_text(original.replace("block: []", "block: ['@spambot_99']"))
        with service.client("admin") as c:
            assert c.post("/v1/admin/reload").status_code == 200
        blocked = score(service, {"text": "hello there", "author": "spambot_99"}).json()["results"][0]
        assert blocked["route"] == {"action": "block", "team": None, "rule": "authors.block",
            "approval": {"required": False, "by": None, "reasons": []}}
        service.routing.write_text("rules: [oops")
        with service.client("admin") as c:
            response = c.post("/v1/admin/reload")
        assert response.status_code == 422 and "previous map stays in force" in response.text
        still = score(service, {"text": "hello there", "author": "spambot_99"}).json()["results"][0]
        assert still["route"]["action"] == "block"
        # a valid edit on disk is picked up by the poller, no call needed
        service.routing.write_text(original)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            route = score(service, {"text": "hello there", "author": "spambot_99"}).json()["results"][0]["route"]
            if route["action"] != "block":
                break
            time.sleep(0.3)
        assert route["action"] != "block"
    finally:
        service.routing.write_text(original)


def test_concurrent_singles_are_micro_batched(service):
    def one(i: int) -> int:
        return score(service, {"text": f"my order {i} is late again", "message_id": f"c{i}"}).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(one, range(64)))
    assert codes == [200] * 64
    metrics = httpx.get(f"{service.url}/metrics").text
    count = float(next(ln.split()[-1] for ln in metrics.splitlines() if ln.startswith("triage_batch_messages_count")))
    total = float(next(ln.split()[-1] for ln in metrics.splitlines() if ln.startswith("triage_batch_messages_sum")))
    assert total / count > 1.5, "concurrent requests share encoder batches"
    assert 'triage_http_requests_total{method="POST",route="/v1/score",status="200"}' in metrics
    assert "triage_model_info{" in metrics and 'triage_predictions_total{head="crisis"' in metrics


def test_model_endpoint_and_reload_follow_the_alias(service, service_store):
    settings, outcome = service_store
    connect_mlflow(settings)
    client = MlflowClient()
    with service.client() as c:
        info = c.get("/v1/model").json()
    assert info["version"] == outcome.version and info["alias"] == "champion"
    assert set(info["thresholds"]) == {"actionable", "priority_tier", "crisis"}
    assert info["metrics"]["crisis"]["macro_f1"] > 0.5 and info["trained_at"]
    other = mlflow.register_model(f"runs:/{outcome.run_id}/model", "triage-ml").version
    try:
        client.set_registered_model_alias("triage-ml", "champion", other)
        with service.client("admin") as c:
            reloaded = c.post("/v1/admin/reload").json()
        assert reloaded["model"]["version"] == str(other) and reloaded["model_changed"]
        assert score(service, {"text": "hi"}).json()["model"]["version"] == str(other)
        # moving the alias back is picked up by the poller (1 s here) without a call
        client.set_registered_model_alias("triage-ml", "champion", outcome.version)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and score(service, {"text": "hi"}).json()["model"]["version"] != \
                outcome.version:
            time.sleep(0.5)
        assert score(service, {"text": "hi"}).json()["model"]["version"] == outcome.version
    finally:
        client.set_registered_model_alias("triage-ml", "champion", outcome.version)
        client.delete_model_version("triage-ml", other)


def test_refuses_to_start_without_keys(trained_store, tmp_path):
    settings, _ = trained_store
    env = {"TRIAGE_MLRUNS_DIR": str(settings.mlruns_dir), "TRIAGE_API_KEYS": "", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(Path(sys.executable).parent / "triage-ml"), "serve"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "no API keys configured" in result.stderr
