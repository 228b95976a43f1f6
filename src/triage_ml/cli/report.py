"""Monitoring reports: drift of recent messages against the training set."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from triage_ml.cli.common import model_with_oof, report_app, settings_from_env
from triage_ml.errors import TriageError


def _since(text: str) -> datetime:
    """'7d', '24h', '90m' before now, or an ISO date/time."""
    import re
    from datetime import UTC, timedelta

    match = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if match:
        n, unit = int(match[1]), match[2]
        name = {"d": "days", "h": "hours", "m": "minutes"}[unit]
        return datetime.now(UTC) - timedelta(**{name: n})
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise TriageError(f"--since '{text}': use a duration like 7d, 24h or 90m, or an ISO date such as "
                          "2026-11-01") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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
