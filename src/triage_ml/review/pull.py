"""``triage-ml review pull`` and the webhook: leads' annotations come back as gold labels.

Every annotation is recorded (``review_annotations``), valid or not. A task's item (a dispute, or a
review-queue message) is closed with ``lead`` labels only when every lead who answered gave a valid
answer and the leads agree on every head; otherwise it stays open and the report says why. One task is
one transaction: its annotations, labels and the closing are stored together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from triage_ml.labels.feedback import resolve_in_session, store_lead_labels
from triage_ml.review.client import LabelStudio, LabelStudioTask
from triage_ml.review.labeling import LeadAnswer, read_annotation
from triage_ml.review.projects import DISPUTES, QUEUE, Project, find_by_project_id, find_project
from triage_ml.store.db import Store
from triage_ml.store.tables import DisputeRow, MessageRow, ReviewAnnotationRow, ReviewQueueRow


@dataclass
class PullReport:
    tasks: int = 0
    annotations: int = 0
    resolved: list[int] = field(default_factory=list)  # dispute ids
    answered: list[int] = field(default_factory=list)  # review-queue ids
    problems: list[str] = field(default_factory=list)  # annotations not stored: contradict the taxonomy
    disagreements: list[str] = field(default_factory=list)  # leads who disagree: the item stays open

    def add(self, other: PullReport) -> None:
        self.tasks += other.tasks
        self.annotations += other.annotations
        self.resolved += other.resolved
        self.answered += other.answered
        self.problems += other.problems
        self.disagreements += other.disagreements


@dataclass(frozen=True)
class _Annotation:
    id: int
    lead: str
    answer: LeadAnswer
    at: datetime | None


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def _lead(annotation: dict[str, Any], users: dict[int, str]) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        return str(who.get("email") or f"label-studio-user-{who.get('id')}")
    if isinstance(who, int):
        return users.get(who, f"label-studio-user-{who}")
    return str(annotation.get("created_username") or "unknown").strip(" ,")


def _annotations(task: LabelStudioTask, users: dict[int, str]) -> list[_Annotation]:
    return [_Annotation(int(a["id"]), _lead(a, users), read_annotation(a.get("result") or []),
                        _time(a.get("updated_at") or a.get("created_at")))
            for a in task.annotations if not a.get("was_cancelled")]


def _record(session: Session, project: Project, task: LabelStudioTask, message_id: str,
            dispute_id: int | None, annotations: list[_Annotation]) -> None:
    now = datetime.now(UTC)
    for a in annotations:
        row = session.scalar(select(ReviewAnnotationRow).where(ReviewAnnotationRow.review_project == project.ref,
                                                               ReviewAnnotationRow.annotation_id == a.id))
        values = {"lead": a.lead, "labels": a.answer.labels, "reason": a.answer.reason, "note": a.answer.note,
                  "problem": a.answer.problem, "annotated_at": a.at, "pulled_at": now}
        if row is None:
            session.add(ReviewAnnotationRow(review_project=project.ref, review_task_id=task.id, annotation_id=a.id,
                                            message_id=message_id, dispute_id=dispute_id, **values))
        elif row.annotated_at != a.at or row.labels != a.answer.labels:  # the lead edited it
            for key, value in values.items():
                setattr(row, key, value)
    session.flush()


def agreed_labels(annotations: list[_Annotation]) -> tuple[dict[str, int], list[str]]:
    """The labels all leads agree on (each lead's latest answer), and the heads where they differ."""
    latest: dict[str, _Annotation] = {}
    for a in sorted(annotations, key=lambda a: (a.at or datetime.min.replace(tzinfo=UTC), a.id)):
        latest[a.lead] = a
    merged: dict[str, int] = {}
    differ: list[str] = []
    for a in latest.values():
        for head, value in a.answer.labels.items():
            if head in merged and merged[head] != value:
                differ.append(head)
            merged.setdefault(head, value)
    differ = sorted(set(differ))
    return {head: value for head, value in merged.items() if head not in differ}, differ


def process_task(store: Store, project: Project, task: LabelStudioTask, users: dict[int, str], *,
                 required: int = 1) -> PullReport:
    """Record a task's annotations and close its item when ``required`` leads have answered validly and
    agree."""
    report = PullReport(tasks=1)
    annotations = _annotations(task, users)
    report.annotations = len(annotations)
    message_id = task.data.get("message_id")
    if not annotations or not isinstance(message_id, str):
        return report
    dispute_id = int(task.data["dispute_id"]) if project.kind == DISPUTES and "dispute_id" in task.data else None
    where = f"task {task.id} ({'dispute ' + str(dispute_id) if dispute_id else 'queue'}, message {message_id})"

    def tx(session: Session) -> PullReport:
        out = PullReport(tasks=1, annotations=len(annotations))
        if session.get(MessageRow, message_id) is None:
            out.problems.append(f"{where}: the message is not in this label store; nothing stored")
            return out
        _record(session, project, task, message_id, dispute_id, annotations)
        item = _open_item(session, project, task, dispute_id)
        if item is None:
            return out
        labels = _settled(annotations, required, where, out)
        if labels is None:
            return out
        first = min(annotations, key=lambda a: (a.at or datetime.max.replace(tzinfo=UTC), a.id))
        if dispute_id is not None:
            notes = "; ".join(f"{a.lead}: {a.answer.note}" for a in annotations if a.answer.note) or None
            resolve_in_session(session, dispute_id, first.lead, labels, notes, role="label-studio",
                               **_provenance(task, annotations))
            out.resolved.append(dispute_id)
        else:
            store_lead_labels(session, message_id, first.lead, labels, dispute_id=None, now=datetime.now(UTC),
                              role="label-studio")
            item.state = "answered"
            out.answered.append(item.id)
        return out

    return store.write(tx)


def _open_item(session: Session, project: Project, task: LabelStudioTask,
               dispute_id: int | None) -> DisputeRow | ReviewQueueRow | None:
    """The dispute or queue item this task reviews, locked, while it is still open for this task; else None."""
    if dispute_id is not None:
        dispute = session.get(DisputeRow, dispute_id, with_for_update=True)
        return dispute if dispute is not None and dispute.state == "open" and dispute.review_task_id == task.id \
            else None
    queued = session.scalar(select(ReviewQueueRow).where(ReviewQueueRow.review_project == project.ref,
                                                         ReviewQueueRow.review_task_id == task.id).with_for_update())
    return queued if queued is not None and queued.state == "open" else None


def _settled(annotations: list[_Annotation], required: int, where: str, out: PullReport) -> dict[str, int] | None:
    """The labels the leads settled on, or None (with the reason in ``out``) while an annotation is invalid,
    fewer than ``required`` leads answered, or they disagree."""
    bad = [a for a in annotations if a.answer.problem]
    if bad:
        out.problems += [f"{where}, annotation {a.id} by {a.lead}: {a.answer.problem}; not stored, the item "
                         "stays open until the annotation is fixed" for a in bad]
        return None
    labels, differ = agreed_labels(annotations)
    leads = sorted({a.lead for a in annotations})
    if len(leads) < required:
        return None  # waiting for more leads (the project's overlap)
    if differ:
        out.disagreements.append(f"{where}: leads {', '.join(leads)} disagree on {', '.join(differ)}; "
                                 "it stays open until they agree")
        return None
    return labels


def _provenance(task: LabelStudioTask, annotations: list[_Annotation]) -> dict[str, Any]:
    """Where a lead's gold label came from: the task, the leads, their annotations and when they were made."""
    annotated_at = max((a.at for a in annotations if a.at), default=None)
    return {"source": "label-studio", "task_id": task.id, "leads": sorted({a.lead for a in annotations}),
            "annotations": sorted(a.id for a in annotations),
            "annotated_at": annotated_at and annotated_at.isoformat()}


def pull(store: Store, ls: LabelStudio) -> PullReport:
    """Read every annotated task of both projects (the catch-up path; the webhook does the same per task)."""
    ls.check()
    report = PullReport()
    users = ls.users()
    for kind in (DISPUTES, QUEUE):
        with store.session() as session:
            project = find_project(session, kind, ls.base_url)
        if project is None or not ls.project_exists(project.project_id):
            continue
        required = ls.overlap(project.project_id)
        for task in ls.tasks(project.project_id):
            if task.annotations:
                report.add(process_task(store, project, task, users, required=required))
    return report


def handle_webhook(store: Store, ls: LabelStudio, payload: dict[str, Any]) -> PullReport | None:
    """An ANNOTATION_CREATED/UPDATED event: read that task back from Label Studio and process it. None
    when the event is about a project this store does not own (or carries no task)."""
    task = payload.get("task") or {}
    project_id = (payload.get("project") or {}).get("id") or task.get("project")
    if not isinstance(task.get("id"), int) or not isinstance(project_id, int):
        return None
    with store.session() as session:
        project = find_by_project_id(session, project_id, ls.base_url)
    if project is None:
        return None
    return process_task(store, project, ls.task(task["id"]), ls.users(), required=ls.overlap(project.project_id))
