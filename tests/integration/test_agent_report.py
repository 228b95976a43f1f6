"""Agent performance from a label store whose history is replayed with its own timestamps (SQLite and
PostgreSQL), and `triage-ml report agents` writing its table, JSON and plot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from triage_ml.labels.decisions import Decision
from triage_ml.labels.disputes import DisputePolicy
from triage_ml.labels.feedback import record_decisions, record_predictions, resolve_dispute
from triage_ml.messages import Message
from triage_ml.monitoring.agents import SLA, agent_report
from triage_ml.store.db import Store

pytestmark = pytest.mark.integration
CLI = Path(sys.executable).parent / "triage-ml"
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
POLICY = DisputePolicy(0.9, 0.8, 0.2)


def prediction(tier: int | None) -> dict:
    return {"message_id": None, "priority_tier": tier, "actionable": tier is not None,
            "route": {"action": "respond", "team": "care", "rule": "tier 1", "approval": None}}


def replay(store: Store) -> None:
    """m1 and m4 are tier 1, m2 tier 2, m3 noise; all posted at T0."""
    texts = {"m1": "my card was charged twice", "m2": "love the new store layout", "m3": "lol",
             "m4": "still no refund after two weeks"}
    record_predictions(store, "triage-ml", "1", [(Message(text, message_id=m, created_at=T0), prediction(tier))
                                                 for (m, text), tier in zip(texts.items(), (1, 2, None, 1),
                                                                            strict=True)])

    def at(event: str, message: str, agent: str, minutes: float, **fields) -> Decision:
        return Decision(event_id=event, message_id=message, agent=agent, action=fields.pop("action", "responded"),
                        decided_at=T0 + timedelta(minutes=minutes), **fields)

    record_decisions(store, [at("e1", "m1", "ana", 30)], POLICY)
    [spam] = record_decisions(store, [at("e2", "m1", "bo", 45, action="marked_spam")], POLICY)
    record_decisions(store, [at("e3", "m2", "bo", 26 * 60), at("e4", "m4", "ana", 120),
                             at("e5", "m3", "ana", 5, action="archived", archive_reason="duplicate")], POLICY)
    [dispute] = spam["disputes"]
    resolve_dispute(store, dispute, "lena", {"actionable": 1, "priority_tier": 1}, "a real complaint")


@pytest.fixture
def store(database_url):
    s = Store(database_url)
    replay(s)
    yield s
    s.dispose()


def test_response_times_sla_gold_agreement_and_disputes_per_agent_and_team(store):
    report = agent_report(store, T0 - timedelta(days=1), T0 + timedelta(days=3), SLA(60, 1440))
    rows = {r["agent"]: r for r in report["agents"]}
    ana, bo, team = rows["ana"], rows["bo"], report["team"]
    assert set(rows) == {"ana", "bo"}
    assert ana["by_action"] == {"archived": 1, "responded": 2} and bo["by_action"] == {"marked_spam": 1,
                                                                                       "responded": 1}
    # ana answered m1 after 30 min and m4 after 120 (tier 1, SLA 60): one in two; m3 is noise and has no SLA
    assert ana["tiers"]["1"] == {"first_responses": 2, "median_minutes": 75.0, "p90_minutes": 111.0,
                                 "sla_met": 0.5}
    assert ana["tiers"]["2"]["first_responses"] == 0 and ana["tiers"]["2"]["sla_met"] is None
    # bo's m1 decision was not the first; his m2 answer took 26 h against tier 2's 24 h
    assert bo["tiers"]["1"]["first_responses"] == 0
    assert bo["tiers"]["2"] == {"first_responses": 1, "median_minutes": 1560.0, "p90_minutes": 1560.0,
                                "sla_met": 0.0}
    # the lead's gold label on m1 (actionable) agrees with ana and overturns bo
    assert ana["gold_agreement"]["actionable"] == {"agree": 1, "n": 1, "share": 1.0}
    assert bo["gold_agreement"]["actionable"] == {"agree": 0, "n": 1, "share": 0.0}
    # noise implies "no crisis": ana's duplicate and bo's spam label two heads each
    assert (ana["labels"], ana["overturned"]) == (4, 0) and (bo["labels"], bo["overturned"]) == (3, 1)
    assert bo["overturned_share"] == 0.333 and bo["disputes_opened"] == 1 and ana["disputes_opened"] == 0
    assert team["decisions"] == 5 and team["tiers"]["1"]["sla_met"] == 0.5 and team["tiers"]["2"]["sla_met"] == 0.0
    assert sorted(report["response_minutes"]["ana"]["1"]) == [30.0, 120.0]
    # the window counts decisions by their own time: a window after ana's decisions leaves only bo's m2 answer
    later = agent_report(store, T0 + timedelta(hours=3), T0 + timedelta(days=3), SLA(60, 1440))
    assert [r["agent"] for r in later["agents"]] == ["bo"] and later["team"]["decisions"] == 1


def test_report_agents_writes_the_table_the_json_and_the_plot(store, tmp_path):
    env = {**os.environ, "TRIAGE_DATABASE_URL": store.url, "TRIAGE_MLRUNS_DIR": str(tmp_path / "mlruns"),
           "TRIAGE_EXPERIMENT_NAME": "test"}
    out = tmp_path / "reports"
    run = subprocess.run([str(CLI), "report", "agents", "--since", "2026-11-01", "--until", "2026-11-10",
                          "--out", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(out / "agents.csv").set_index("agent")
    assert list(table.index) == ["ana", "bo", "(team)"]
    assert table.loc["ana", "tier1_sla_met"] == 0.5 and table.loc["bo", "overturned_share"] == 0.333
    assert table.loc["(team)", "decisions"] == 5
    assert json.loads((out / "agents.json").read_text())["team"]["decisions"] == 5
    assert (out / "agents.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ana" in run.stdout and "agents.png" in run.stdout
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    [logged] = client.search_runs([client.get_experiment_by_name("test-monitoring").experiment_id])
    assert {a.path for a in client.list_artifacts(logged.info.run_id)} == {"agents.png", "agents.json"}
    assert logged.data.metrics["team.tier1.sla_met"] == 0.5
    bad = subprocess.run([str(CLI), "report", "agents", "--since", "last week"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert bad.returncode != 0 and "--since 'last week' is not a duration like 30d" in bad.stderr
    assert "Traceback" not in bad.stderr
