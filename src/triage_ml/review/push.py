"""``triage-ml review push``: every open dispute becomes one Label Studio task, exactly once.

A task carries the message and its context, why it is disputed and every agent decision (read-only
text), and the model's prediction as a pre-annotation. The task id is kept on the dispute only after
Label Studio confirmed the task; a push that died between the two is mended by the next one, which
adopts tasks already in the project (matched by ``dispute_id``) instead of creating them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage_ml.labels.feedback import dispute_view
from triage_ml.messages import CONTEXT_FIELDS
from triage_ml.review.client import LabelStudio
from triage_ml.review.labeling import prediction_result
from triage_ml.review.projects import DISPUTES, QUEUE, Project, ensure_project
from triage_ml.store.db import Store
from triage_ml.store.tables import DisputeRow

WEBHOOK_HEADER = "X-Triage-Webhook-Secret"
_BATCH = 200  # tasks per import request
_SHOWN_AS = {"conversation_id": "conversation", "is_private": "private", "created_at": "posted"}  # else its name


@dataclass(frozen=True)
class PushReport:
    project_id: int
    created: int
    adopted: int  # tasks found in Label Studio from an interrupted push, now recorded
    already_pushed: int
    webhook_id: int | None = None


def context_text(message: dict[str, Any]) -> str:
    parts = []
    for key in CONTEXT_FIELDS:
        label, value = _SHOWN_AS.get(key, key), message.get(key)
        if value is None or value == "":
            continue
        parts.append(f"{label}: {('yes' if value else 'no') if isinstance(value, bool) else value}")
    return " · ".join(parts) or "no context recorded"


def labels_text(labels: dict[str, Any] | None) -> str:
    if not labels:
        return "no label"
    if labels.get("actionable") is False:
        return "noise"
    parts = ["actionable"] if labels.get("actionable") else []
    if labels.get("priority_tier") is not None:
        parts.append(f"tier {labels['priority_tier']}")
    if labels.get("crisis") is not None:
        parts.append("crisis" if labels["crisis"] else "no crisis")
    return ", ".join(parts)


def decision_text(decision: dict[str, Any]) -> str:
    event = decision.get("event") or {}
    detail = [f"{k} {event[k]}" for k in ("team", "archive_reason", "reason") if event.get(k)]
    how = f" ({', '.join(detail)})" if detail else ""
    return f"{decision['agent']} {decision['action']}{how} at {decision['received_at']}: " \
           f"{labels_text(decision.get('labels'))}"


def prediction_payload(prediction: dict[str, Any]) -> dict[str, Any]:
    """Label Studio's ``predictions`` item: the result, the model version, and as score the model's
    confidence in its actionable answer (max(p, 1 - p))."""
    p = float(prediction.get("actionable_prob", 0.5))
    version = f"{prediction.get('model_name', 'triage-ml')} v{prediction.get('model_version', '?')}"
    return {"model_version": version, "score": round(max(p, 1 - p), 4), "result": prediction_result(prediction)}


def message_task(message: dict[str, Any], why: str, prediction: dict[str, Any] | None,
                 **ids: Any) -> dict[str, Any]:
    """A task for one message; ``ids`` (dispute_id or queue_id, message_id) ride in its data."""
    data = {"text": message["text"], "context": context_text(message), "why": why,
            "message_id": message["message_id"], **ids,
            **{k: message.get(k) for k in ("channel", "brand", "conversation_id") if message.get(k)}}
    task: dict[str, Any] = {"data": data}
    if prediction:
        task["predictions"] = [prediction_payload(prediction)]
    return task


def dispute_task(view: dict[str, Any]) -> dict[str, Any]:
    reasons = "\n".join(f"- {r['detail']}" for r in view["reasons"])
    decisions = "\n".join(f"- {decision_text(d)}" for d in view["decisions"]) or "- none"
    why = f"Disputed because:\n{reasons}\n\nAgent decisions:\n{decisions}"
    return message_task(view["message"], why, view["prediction"], dispute_id=view["id"])


def existing_tasks(ls: LabelStudio, project: Project, key: str) -> dict[Any, int]:
    """{value of ``key`` in a task's data: task id} over the tasks already in the project (the first task
    wins when several carry the same value)."""
    out: dict[Any, int] = {}
    for task in ls.tasks(project.project_id):
        value = task.data.get(key)
        if isinstance(value, int | str):
            out.setdefault(value, task.id)
    return out


def existing_message_tasks(ls: LabelStudio, project: Project) -> dict[str, int]:
    return {k: v for k, v in existing_tasks(ls, project, "message_id").items() if isinstance(k, str)}


def import_in_batches(ls: LabelStudio, project: Project, tasks: list[dict[str, Any]]) -> list[int]:
    ids: list[int] = []
    for start in range(0, len(tasks), _BATCH):
        ids.extend(ls.import_tasks(project.project_id, tasks[start:start + _BATCH]))
    return ids


def add_webhooks(store: Store, ls: LabelStudio, url: str, secret: str, *, overlap: int = 1) -> int:
    """Point both projects' annotation events at the service's receiver; returns the disputes hook's id."""
    hook = ls.add_webhook(ensure_project(store, ls, DISPUTES, overlap=overlap).project_id, url, secret,
                          WEBHOOK_HEADER)
    ls.add_webhook(ensure_project(store, ls, QUEUE, overlap=overlap).project_id, url, secret, WEBHOOK_HEADER)
    return hook


def push(store: Store, ls: LabelStudio, *, limit: int | None = None, overlap: int = 1) -> PushReport:
    """Send every open dispute without a task (at most ``limit``) to the disputes project (created, when
    new, with ``overlap`` leads per task)."""
    ls.check()
    project = ensure_project(store, ls, DISPUTES, overlap=overlap)
    with store.session() as session:
        query = select(DisputeRow).where(DisputeRow.state == "open", DisputeRow.review_task_id.is_(None)) \
            .order_by(DisputeRow.id).limit(limit)
        views = [dispute_view(session, d) for d in session.scalars(query).all()]
        already = session.scalar(select(func.count()).select_from(DisputeRow).where(
            DisputeRow.state == "open", DisputeRow.review_task_id.is_not(None))) or 0
    if not views:
        return PushReport(project.project_id, 0, 0, already)
    found = existing_tasks(ls, project, "dispute_id")
    new = [v for v in views if v["id"] not in found]
    created = import_in_batches(ls, project, [dispute_task(v) for v in new])
    assigned = {v["id"]: found[v["id"]] for v in views if v["id"] in found}
    assigned.update(zip([v["id"] for v in new], created, strict=True))

    def mark(session: Session) -> None:
        now = datetime.now(UTC)
        for dispute_id, task_id in assigned.items():
            row = session.get(DisputeRow, dispute_id, with_for_update=True)
            if row is not None and row.review_task_id is None:
                row.review_project, row.review_task_id, row.pushed_at = project.ref, task_id, now

    store.write(mark)
    return PushReport(project.project_id, len(created), len(assigned) - len(created), already)
