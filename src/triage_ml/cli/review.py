"""Lead reviews in Label Studio: push, pull, suggest, stats."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from triage_ml.cli.common import model_with_oof, review_app, settings_from_env

if TYPE_CHECKING:
    from triage_ml.review.client import LabelStudio
    from triage_ml.settings import Settings
    from triage_ml.store.db import Store


def _review_context() -> tuple[Settings, Store, LabelStudio]:
    from triage_ml.review.client import label_studio_client
    from triage_ml.store.db import Store

    settings = settings_from_env()
    return settings, Store(settings.database_url), label_studio_client(settings)


@review_app.command("push")
def review_push_cmd(
    limit: Annotated[int | None, typer.Option(min=1, help="push at most this many disputes")] = None,
) -> None:
    """Send every open dispute to Label Studio as a task (once), with the model's prediction as a
    pre-annotation and the agents' decisions as context. Registers the webhook when it is configured."""
    from triage_ml.review.push import add_webhooks, push

    settings, store, ls = _review_context()
    try:
        report = push(store, ls, limit=limit, overlap=settings.review_leads_per_task)
        typer.echo(f"disputes project {report.project_id} at {ls.base_url}: {report.created} task(s) created, "
                   f"{report.adopted} recovered from an interrupted push, {report.already_pushed} already there")
        if settings.label_studio_webhook_url and settings.label_studio_webhook_secret:
            hook = add_webhooks(store, ls, settings.label_studio_webhook_url,
                                settings.label_studio_webhook_secret.get_secret_value(),
                                overlap=settings.review_leads_per_task)
            typer.echo(f"webhook {hook}: annotations are posted to {settings.label_studio_webhook_url}")
    finally:
        store.dispose()


@review_app.command("pull")
def review_pull_cmd() -> None:
    """Read leads' annotations back: valid, agreeing answers become lead labels and close their dispute or
    queue item; contradictions and disagreements are reported and stay open."""
    from triage_ml.review.pull import pull

    _, store, ls = _review_context()
    try:
        report = pull(store, ls)
    finally:
        store.dispose()
    typer.echo(f"read {report.annotations} annotation(s) on {report.tasks} task(s): {len(report.resolved)} "
               f"dispute(s) resolved, {len(report.answered)} queue item(s) answered")
    for line in report.problems:
        typer.echo(f"  not stored: {line}")
    for line in report.disagreements:
        typer.echo(f"  open: {line}")


@review_app.command("suggest")
def review_suggest_cmd(
    n: Annotated[int, typer.Option("--n", min=1, max=10_000, help="messages to add to the review queue")] = 50,
    model: Annotated[str | None, typer.Option(help="model URI; default models:/<name>@<alias>")] = None,
) -> None:
    """Active learning: add the most useful unlabeled or agent-only messages to the review-queue project,
    each with the reason it was chosen."""
    from triage_ml.review.suggest import suggest
    from triage_ml.routing import EscalationMap

    settings, store, ls = _review_context()
    try:
        routes = EscalationMap.from_yaml(settings.routing_path)
        loaded, name, version, oof = model_with_oof(settings, model)
        report = suggest(store, ls, loaded, name, version, n, routes=routes, oof=oof,
                         overlap=settings.review_leads_per_task)
    finally:
        store.dispose()
    typer.echo(f"review queue project {report.project_id}: {len(report.added)} of {report.candidates} candidate "
               f"message(s) added (model {name} v{version})")
    for c in report.added:
        typer.echo(f"  {c.message_id}: " + "; ".join(w["detail"] for w in c.why))


@review_app.command("stats")
def review_stats_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Lead agreement per head (Cohen's kappa where two or more leads annotated a task) and review counts."""
    from triage_ml.review.agreement import review_stats
    from triage_ml.store.db import Store

    store = Store(settings_from_env().database_url)
    try:
        stats = review_stats(store)
    finally:
        store.dispose()
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    d, q = stats["disputes"], stats["queue"]
    typer.echo(f"disputes: {d['open']} open ({d['open_in_label_studio']} in Label Studio), {d['resolved']} resolved "
               f"({d['resolved_in_label_studio']} in Label Studio); review queue: {q['open']} open, "
               f"{q['answered']} answered")
    typer.echo(f"annotations: {stats['annotations']} ({stats['invalid_annotations']} not stored: contradict the "
               f"taxonomy); tasks with two or more leads: {stats['tasks_with_two_or_more_leads']}")
    for head, h in stats["heads"].items():
        k = "n/a" if h["kappa"] is None else f"{h['kappa']:.3f}"
        agree = "n/a" if h["agreement"] is None else f"{h['agreement']:.1%}"
        typer.echo(f"  {head:<14} Cohen's kappa {k:>6}  agreement {agree:>6}  ({h['pairs']} pair(s) of answers)")
