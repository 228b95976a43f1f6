"""The registered model served by `mlflow models serve`, unchanged, returns all three predictions."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.service_fixtures import free_port, wait_until_up
from triage_ml.registry import client_for, load

pytestmark = pytest.mark.integration

TEXTS = ["@SkyLarkAir my flight was cancelled and I'm stuck at the airport with two kids",
         "RT + follow @TravelDeals to win 2 tickets!! #giveaway",
         "@Munchly the chicken was raw and my whole family is in A&E with food poisoning",
         "shout out to the crew on SL118, lovely flight"]


@pytest.fixture(scope="module")
def mlflow_server(trained_store, tmp_path_factory):
    settings, _ = trained_store
    port = free_port()
    bin_dir = Path(sys.executable).parent
    # Both URIs explicitly: mlflow.set_registry_uri() exports MLFLOW_REGISTRY_URI into os.environ, so an
    # inherited one points at whichever store an earlier test connected to last (and its champion).
    uri = settings.resolved_tracking_uri()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri,
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("w")
    proc = subprocess.Popen([str(bin_dir / "mlflow"), "models", "serve", "-m", "models:/triage-ml@champion",
                             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, f"{url}/ping", Path(log.name), timeout=180, interval=1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_served_model_returns_every_prediction(mlflow_server, trained_store):
    body = {"dataframe_split": {"columns": ["text", "message_id"],
                                "data": [[t, f"m{i}"] for i, t in enumerate(TEXTS)]}}
    response = httpx.post(f"{mlflow_server}/invocations", json=body, timeout=60)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == len(TEXTS)
    expected = load(client_for(trained_store[0]), "models:/triage-ml@champion").predict_frame(TEXTS)
    for got, (_, want) in zip(predictions, expected.iterrows(), strict=True):
        assert set(got) >= {"actionable", "actionable_prob", "priority_tier", "tier1_prob", "tier2_prob",
                            "crisis_risk", "crisis"}
        # the kind columns come for crises (MLflow's JSON drops a missing optional value)
        assert set(got) - set(expected.columns) == set()
        assert got.get("crisis_kind") == (want["crisis_kind"] if want["crisis"] else None)
        assert got["actionable"] == bool(want["actionable"])
        assert got["crisis"] == bool(want["crisis"])
        assert got["actionable_prob"] == pytest.approx(want["actionable_prob"], abs=1e-6)
        assert got["crisis_risk"] == pytest.approx(want["crisis_risk"], abs=1e-6)
        if want["actionable"]:
            assert got["priority_tier"] in (1, 2) and got["tier1_prob"] + got["tier2_prob"] == pytest.approx(1)
        else:
            assert got["priority_tier"] is None
    assert predictions[0]["actionable"] and predictions[0]["priority_tier"] == 1
    assert not predictions[1]["actionable"]


def test_served_model_rejects_input_without_text(mlflow_server):
    body = {"dataframe_split": {"columns": ["message_id"], "data": [["m1"]]}}
    response = httpx.post(f"{mlflow_server}/invocations", json=body, timeout=60)
    assert 400 <= response.status_code < 500


def test_served_model_reads_the_turn_a_message_answers(mlflow_server, trained_store):
    from triage_ml.thread import Turn

    asked = "did the replacement card arrive?"
    body = {"dataframe_split": {"columns": ["text", "in_reply_to_text", "in_reply_to_from"],
                                "data": [["nope", asked, "brand"], ["nope", "", ""]]}}
    response = httpx.post(f"{mlflow_server}/invocations", json=body, timeout=60)
    assert response.status_code == 200, response.text
    got = response.json()["predictions"]
    want = load(client_for(trained_store[0]), "models:/triage-ml@champion").predict_frame(
        ["nope", "nope"], answered=[Turn(asked, "brand"), None])
    assert [g["thread_used"] for g in got] == [True, False]
    for g, (_, w) in zip(got, want.iterrows(), strict=True):
        assert g["actionable_prob"] == pytest.approx(w["actionable_prob"], abs=1e-6)
