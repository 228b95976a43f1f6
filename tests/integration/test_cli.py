"""The CLI as a user runs it: one clear line and a non-zero exit for bad input, never a traceback."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import XCI
from tests.integration.service_fixtures import free_port

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).parent / "triage-ml")


def run(*args, env=None):
    return subprocess.run([CLI, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=600)


@pytest.mark.parametrize(("content", "fragment"), [
    ("text,priority_tier\nhello,1\nworld,3\n", "row 2, column 'priority_tier': '3' is not a tier"),
    ("body\nhello\n", "no 'text' column"),
    ("text,actionable,crisis\nmy car caught fire,false,true\n", "column 'crisis'"),
])
def test_bad_file_gives_one_line_and_exit_2(tmp_path, content, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    for args in (("data", "validate", str(path)), ("train", "--data", str(path), "--no-register")):
        result = run(*args, env={"TRIAGE_MLRUNS_DIR": str(tmp_path / "mlruns")})
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and fragment in errors[0], result.stderr


def test_bad_config_and_unknown_import(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("cv_folds: one\n")
    result = run("train", "--config", str(config))
    assert result.returncode == 2 and "'cv_folds'" in result.stderr and "Traceback" not in result.stderr
    result = run("data", "import", "nope", str(XCI), "--out", str(tmp_path / "x.csv"))
    assert result.returncode == 2 and "unknown import kind 'nope'" in result.stderr


def test_import_xci_then_validate(tmp_path):
    out = tmp_path / "xci.parquet"
    result = run("data", "import", "xci", str(XCI), "--out", str(out))
    assert result.returncode == 0, result.stderr
    result = run("data", "validate", str(out))
    assert result.returncode == 0 and "messages OK" in result.stdout


def test_evaluate_registered_model(trained_store, seed_subset):
    settings, _ = trained_store
    result = run("evaluate", "data/seed/messages.csv",
                 env={"TRIAGE_MLRUNS_DIR": str(settings.mlruns_dir), "TRIAGE_EXPERIMENT_NAME": "test",
                      "TRIAGE_CACHE_DIR": str(settings.cache_dir)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["metrics"]) == {"actionable", "priority_tier", "crisis"}
    assert report["metrics"]["actionable"]["macro_f1"] > 0.8


def test_train_from_store_uses_the_export_over_the_seed(tmp_path, seed_half):
    import mlflow
    import pandas as pd
    import yaml

    from tests.conftest import CACHE_DIR, FROZEN_CONFIG
    from triage_ml.data.io import read_table
    from triage_ml.labels.decisions import Decision
    from triage_ml.labels.disputes import DisputePolicy
    from triage_ml.labels.feedback import record_decisions
    from triage_ml.store.db import Store

    seed = pd.read_csv(seed_half, dtype=str, keep_default_na=False)  # the export's precedence is under test
    actionable = seed[seed["actionable"] == "true"].head(2)
    url = f"sqlite:///{(tmp_path / 'triage.db').as_posix()}"
    store = Store(url)
    decisions = [Decision(event_id=f"e{i}", message_id=row.message_id, agent="ana", action="marked_spam",
                          text=row.text) for i, row in enumerate(actionable.itertuples())]
    decisions.append(Decision(event_id="e-new", message_id="store-only-1", agent="ana", action="escalated",
                              team="legal", text="my lawyer will be in touch about the injury in your store"))
    record_decisions(store, decisions, DisputePolicy())
    store.dispose()
    config = tmp_path / "small.yaml"
    # the store's export is under test, not fine-tuning or the ONNX export
    config.write_text(yaml.safe_dump({**FROZEN_CONFIG, "export_onnx": False}))
    env = {"TRIAGE_DATABASE_URL": url, "TRIAGE_MLRUNS_DIR": str(tmp_path / "mlruns"),
           "TRIAGE_CACHE_DIR": str(CACHE_DIR), "TRIAGE_EXPERIMENT_NAME": "from-store"}
    result = subprocess.run([CLI, "train", "--from-store", "--data", str(seed_half), "--config", str(config),
                             "--no-register", "--no-progress"], capture_output=True, text=True, timeout=600,
                            env={**os.environ, **env}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "label store: 3 labeled messages" in result.stdout
    # the 2 seed ids are relabeled, not added: training rows and the held-out gold set add up to seed + 1
    counts = re.search(r"trained on (\d+) messages \(data \w+; (\d+) more held out", result.stdout)
    assert counts and int(counts[1]) + int(counts[2]) == len(seed) + 1, result.stdout
    mlflow.set_tracking_uri(f"sqlite:///{(tmp_path / 'mlruns' / 'mlflow.db').as_posix()}")
    [run_info] = mlflow.search_runs(experiment_names=["from-store"], output_format="list")
    assert run_info.data.params["store_export_rows"] == "3"
    export = read_table(run_info.data.params["store_export"])  # Parquet: read back exactly
    assert run_info.data.params["store_export"].endswith(".parquet")
    assert set(export["message_id"]) == {*actionable["message_id"], "store-only-1"}
    assert set(export.loc[export["message_id"].isin(actionable["message_id"]), "actionable"]) == {False}


def test_keys_create_list_revoke(tmp_path):
    """Personal API keys (issue 19, finding 7): the key is printed once, alone on stdout; `keys list` never
    shows a key or its hash; mistakes are one line and exit 2."""
    from triage_ml.store.keys import hash_key

    env = {"TRIAGE_DATABASE_URL": f"sqlite:///{(tmp_path / 'triage.db').as_posix()}"}
    created = run("keys", "create", "--role", "agent", "--name", "ana", env=env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key), created.stdout
    assert "shown once" in created.stderr and key not in created.stderr
    assert run("keys", "create", "--role", "lead", "--name", "lena", env=env).returncode == 0

    for args, fragment in [(("create", "--role", "lead", "--name", "ana"), "'ana' already has an active key"),
                           (("create", "--role", "boss", "--name", "bob"), "role 'boss' is not one of"),
                           (("create", "--role", "agent", "--name", "bob smith"), "name 'bob smith'"),
                           (("revoke", "bob"), "no active key named 'bob'"),
                           (("create", "--role", "agent"), "Missing option '--name'")]:
        result = run("keys", *args, env=env)
        errors = [line for line in result.stderr.splitlines() if line.lower().startswith("error:")]
        assert result.returncode == 2 and len(errors) == 1 and fragment in errors[0], result.stderr
        assert "Traceback" not in result.stderr

    listed = run("keys", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^ana\s+agent\s+\S+\s+active$", listed.stdout, re.M), listed.stdout
    assert re.search(r"^lena\s+lead\s+\S+\s+active$", listed.stdout, re.M), listed.stdout
    revoked = run("keys", "revoke", "ana", env=env)
    assert revoked.returncode == 0 and "revoked ana's agent key" in revoked.stdout, revoked.stderr
    as_json = run("keys", "list", "--json", env=env)
    assert [(k["name"], k["revoked_at"] is None) for k in json.loads(as_json.stdout)] == [("ana", False),
                                                                                          ("lena", True)]
    active = run("keys", "list", "--active", env=env)
    assert "lena" in active.stdout and "ana" not in active.stdout
    for out in (listed, as_json, active, revoked):
        assert key not in out.stdout + out.stderr and hash_key(key) not in out.stdout + out.stderr


def test_serve_in_production_refuses_development_keys_before_loading_a_model(tmp_path):
    """`triage-ml dev-keys` then `triage-ml serve` with TRIAGE_ENVIRONMENT=production: one line naming the
    setting and the fix, exit 2, in seconds (no model is loaded; there is none in this folder anyway)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    made = subprocess.run([CLI, "dev-keys"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / ".env").read_text().count(":triage-dev-") == 4  # every role's key carries the marker
    started = time.monotonic()
    served = subprocess.run([CLI, "serve", "--port", str(free_port())], cwd=tmp_path, capture_output=True, text=True,
                            env={**env, "TRIAGE_ENVIRONMENT": "production"}, timeout=60)
    seconds = time.monotonic() - started
    assert served.returncode == 2, served.stderr
    assert "Traceback" not in served.stderr and served.stderr.count("\n") == 1, served.stderr
    assert served.stderr.startswith("error: TRIAGE_ENVIRONMENT=production refuses to start: TRIAGE_API_KEYS holds "
                                    "development keys"), served.stderr
    assert "keys of your own" in served.stderr and "token_urlsafe" in served.stderr
    assert seconds < 30, f"refusing took {seconds:.1f} s: something heavy ran before the check"
