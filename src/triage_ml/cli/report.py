"""Reports: drift of recent messages against the training set; the audit trail."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from triage_ml.cli.common import model_with_oof, report_app, settings_from_env
from triage_ml.errors import TriageError
from triage_ml.times import parse_since


def _since(text: str) -> datetime:
    try:
        return parse_since(text)
    except ValueError as exc:
        raise TriageError(f"--since {exc}") from None


@report_app.command("drift")
def report_drift_cmd(
    since: Annotated[str, typer.Option(help="recent window start: 7d, 24h, 90m or an ISO date")] = "7d",
    out: Annotated[Path, typer.Option(help="folder for drift.png and drift.json")] = Path("reports"),
    model: Annotated[str | None, typer.Option(help="model URI; default models:/<name>@<alias>")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many recent messages (newest first)")] = 20_000,
) -> None:
    """Recent messages (label store) against the model's training set: PSI per head, embedding centroid
    distance per channel and brand; a plot and a JSON, also logged to MLflow."""
    from datetime import UTC

    import matplotlib.pyplot as plt
    import mlflow

    from triage_ml.monitoring.drift import drift_figure, drift_report, recent_messages
    from triage_ml.pipeline.tracking import connect_mlflow
    from triage_ml.store.db import Store

    settings = settings_from_env()
    start, end = _since(since), datetime.now(UTC)
    store = Store(settings.database_url)
    try:
        recent = recent_messages(store, start, end, limit)
    finally:
        store.dispose()
    if recent.empty:
        raise TriageError(f"no messages in the label store since {start.isoformat(timespec='minutes')}; score "
                          "messages with a message_id (they are recorded) or widen --since")
    loaded, name, version, oof = model_with_oof(settings, model)
    if oof is None:
        raise TriageError(f"{name} v{version} has no out-of-fold table in its run; retrain it to compare drift")
    report = drift_report(loaded, oof, recent)
    out.mkdir(parents=True, exist_ok=True)
    fig = drift_figure(report)
    fig.savefig(out / "drift.png", dpi=110)
    (out / "drift.json").write_text(json.dumps({"model": f"{name} v{version}", "since": start.isoformat(),
                                                "until": end.isoformat(), **report.to_dict()}, indent=2))
    connect_mlflow(settings)  # this command logs its own run to the configured store
    mlflow.set_experiment(f"{settings.experiment_name}-monitoring")
    with mlflow.start_run(run_name=f"drift-{end:%Y%m%dT%H%M}"):
        mlflow.log_params({"model": f"{name} v{version}", "since": start.isoformat(), "n_recent": len(recent)})
        mlflow.log_metrics({f"psi.{h}": v["psi"] for h, v in report.heads.items() if v["psi"] == v["psi"]})
        mlflow.log_figure(fig, "drift.png")
        mlflow.log_dict(report.to_dict(), "drift.json")
    plt.close(fig)
    typer.echo(f"{len(recent)} recent messages since {start.isoformat(timespec='minutes')} vs {report.n_train} "
               f"training messages of {name} v{version}")
    for head, h in report.heads.items():
        typer.echo(f"  {head:<14} PSI {h['psi']:.3f} ({h['level']})  positive: training {h['train_positive']:.1%}, "
                   f"recent {h['recent_positive']:.1%}")
    for g in report.groups:
        typer.echo(f"  {g['group']:<28} n={g['n_recent']:<6} centroid distance {g['centroid_distance']:.4f}  "
                   f"actionable {g['recent_actionable']:.1%}  crisis {g['recent_crisis']:.1%}")
    typer.echo(f"plot {out / 'drift.png'}; table {out / 'drift.json'}")


@report_app.command("audit")
def report_audit_cmd(
    kind: Annotated[str | None, typer.Option(help="a kind (decision, draft.approved) or a family (dispute)")] = None,
    actor: Annotated[str | None, typer.Option(help="the agent or lead")] = None,
    since: Annotated[str, typer.Option(help="window start: 30d, 24h, 90m or an ISO date")] = "30d",
    until: Annotated[str | None, typer.Option(help="window end (exclusive), like --since; default now")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many entries, oldest first")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line instead of a table")] = False,
) -> None:
    """The audit trail from the label store: who decided, labelled, resolved, approved, promoted or changed the
    map, and when."""
    from triage_ml.store import audit
    from triage_ml.store.db import Store

    try:
        audit.check_kind(kind) if kind is not None else None
    except ValueError as exc:
        raise TriageError(f"--kind: {exc}") from None
    start = _since(since)
    end = None if until is None else _since(until)
    store = Store(settings_from_env().database_url)
    try:
        page = audit.page(store, kind=kind, actor=actor, since=start, until=end, limit=limit)
    finally:
        store.dispose()
    for entry in page["entries"]:
        if as_json:
            typer.echo(json.dumps(entry, sort_keys=True))
        else:
            who = f"{entry['actor'] or '-'} ({entry['role'] or '-'})"
            typer.echo(f"{entry['at'][:19]}  {entry['kind']:<17} {who:<28} {entry['subject'] or '-':<24} "
                       f"{json.dumps(entry['detail'], sort_keys=True)}")
    more = f"; {page['total'] - len(page['entries'])} more: raise --limit or narrow --since" \
        if page["total"] > len(page["entries"]) else ""
    typer.echo(f"{len(page['entries'])} of {page['total']} entries since {start.isoformat(timespec='minutes')}{more}",
               err=True)


@report_app.command("agents")
def report_agents_cmd(
    since: Annotated[str, typer.Option(help="window start: 30d, 24h, 90m or an ISO date")] = "30d",
    until: Annotated[str | None, typer.Option(help="window end (exclusive), like --since; default now")] = None,
    out: Annotated[Path, typer.Option(help="folder for agents.csv, agents.json and agents.png")] = Path("reports"),
) -> None:
    """Agent performance from the label store: decisions, first response times and SLA per tier, agreement with
    leads' gold labels, overturned labels, disputes, drafts and unapproved replies; a table, a JSON and a plot,
    also logged to MLflow's monitoring experiment."""
    from datetime import UTC

    import matplotlib.pyplot as plt
    import mlflow
    import pandas as pd

    from triage_ml.monitoring.agents import SLA, agent_report, agents_figure, table
    from triage_ml.pipeline.tracking import connect_mlflow
    from triage_ml.store.db import Store

    settings = settings_from_env()
    start = _since(since)
    end = datetime.now(UTC) if until is None else _since(until)
    store = Store(settings.database_url)
    try:
        report = agent_report(store, start, end, SLA(settings.sla_tier1_minutes, settings.sla_tier2_minutes))
    finally:
        store.dispose()
    if not report["agents"]:
        raise TriageError(f"no decisions in the label store between {start.isoformat(timespec='minutes')} and "
                          f"{end.isoformat(timespec='minutes')}; widen --since")
    out.mkdir(parents=True, exist_ok=True)
    rows = pd.DataFrame(table(report))
    rows.to_csv(out / "agents.csv", index=False)
    (out / "agents.json").write_text(json.dumps(report, indent=2))
    fig = agents_figure(report)
    fig.savefig(out / "agents.png", dpi=110)
    connect_mlflow(settings)
    mlflow.set_experiment(f"{settings.experiment_name}-monitoring")
    with mlflow.start_run(run_name=f"agents-{end:%Y%m%dT%H%M}"):
        team = report["team"]
        mlflow.log_params({"since": start.isoformat(), "until": end.isoformat(), "agents": len(report["agents"])})
        mlflow.log_metrics({f"team.tier{t}.sla_met": v["sla_met"] for t, v in team["tiers"].items()
                            if v["sla_met"] is not None} | {"team.decisions": team["decisions"]})
        mlflow.log_figure(fig, "agents.png")
        mlflow.log_dict(report, "agents.json")
    plt.close(fig)
    shown = ["agent", "decisions", "tier1_median_min", "tier1_sla_met", "tier2_median_min", "tier2_sla_met",
             "overturned_share", "disputes_opened", "drafts_rejected", "replies_without_sign_off"]
    typer.echo(rows[[c for c in shown if c in rows]].to_string(index=False))
    typer.echo(f"table {out / 'agents.csv'}; plot {out / 'agents.png'}; every figure {out / 'agents.json'}")
