"""The audit trail: who did what, when, to which message, dispute, draft, model or map.

Every write the product acknowledges adds its entry in the same transaction as the write itself, so an entry
exists exactly when the write does (a replayed decision writes nothing and adds nothing). The table is
append-only: nothing here updates or deletes a row, and the database refuses to (migration 0005's triggers).

An entry names its ``actor`` (the agent or lead; None for a service account's key) and ``role`` (the key's
role, or ``cli``, ``label-studio``, ``service`` for writes that no API key made).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, NamedTuple

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from triage_ml.store import db
from triage_ml.store.db import Store
from triage_ml.store.tables import AuditRow, utcnow

# kind -> what an entry of that kind records (the README's audit table is this list)
KINDS: Final = {
    "decision": "an agent decision, with the labels it implied and the disputes it opened or joined",
    "label.lead": "a lead's gold labels for a message (a dispute's resolution or a review-queue answer)",
    "dispute.opened": "a dispute opened, by a decision's disagreement or by hand",
    "dispute.flagged": "a manual flag added to an open dispute",
    "dispute.resolved": "a dispute closed with a lead's labels (through the API or Label Studio)",
    "draft.submitted": "an agent's reply draft, pending sign-off or approved at once",
    "draft.approved": "a draft signed off by a lead or PR",
    "draft.rejected": "a draft sent back by a lead or PR, with a note",
    "reply.unapproved": "a 'responded' decision on a message that needed sign-off, with no approved draft",
    "model.promoted": "the serving alias moved to a model version (by hand or by the retraining gate)",
    "model.rolled_back": "the previous champion restored",
    "map.changed": "an escalation map version loaded (from its file or through the API)",
    "key.created": "a personal API key issued",
    "key.revoked": "a personal API key revoked",
    "erasure": "an author's messages erased on request, or texts purged past retention (the author by hash only)",
}
FAMILIES: Final = sorted({kind.split(".")[0] for kind in KINDS})


class Actor(NamedTuple):
    """Who wrote: the person (None for a service account's key) and the role they wrote as."""

    name: str | None
    role: str | None


def cli_actor() -> Actor:
    """A command run by hand: the machine's user name, role ``cli``."""
    import getpass

    try:
        return Actor(getpass.getuser(), "cli")
    except (KeyError, OSError):  # no user name in the environment or the password database
        return Actor(None, "cli")


def record(session: Session, kind: str, actor: Actor, subject: str | None = None, **detail: Any) -> None:
    """Add one entry in ``session``'s transaction (it commits, or rolls back, with the write it records)."""
    if kind not in KINDS:
        raise ValueError(f"unknown audit kind {kind!r}")
    session.add(AuditRow(at=utcnow(), kind=kind, actor=actor.name, role=actor.role, subject=subject,
                         detail=detail))


def record_model_event(database_url: str, kind: str, actor: Actor, name: str, version: str,
                       **detail: Any) -> str | None:
    """Audit a registry change (``model.promoted``, ``model.rolled_back``). The change happens in MLflow, outside
    the label store's transactions, so the entry is written right after it; returns why it could not be
    written (the change stands), else None."""
    from triage_ml.errors import TriageError

    store = Store(database_url)
    try:
        store.write(lambda session: record(session, kind, actor, f"model:{name}/{version}", **detail))
        return None
    except TriageError as exc:
        return str(exc)
    finally:
        store.dispose()


def check_kind(kind: str) -> str:
    """A kind or a family of kinds (``dispute`` matches ``dispute.opened`` and the rest); ValueError names the
    accepted ones."""
    if kind not in KINDS and kind not in FAMILIES:
        raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)} or a family: {', '.join(FAMILIES)}")
    return kind


def page(store: Store, *, kind: str | None = None, actor: str | None = None, since: datetime | None = None,
         until: datetime | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """Entries, oldest first, filtered by kind (or family), actor and time [since, until):
    {entries, limit, offset, total, next_offset}; the next page starts at ``next_offset``, None after the last."""
    where = []
    if kind is not None:
        check_kind(kind)
        where.append(AuditRow.kind == kind if kind in KINDS else
                     or_(AuditRow.kind == kind, AuditRow.kind.startswith(f"{kind}.")))
    if actor is not None:
        where.append(AuditRow.actor == actor)
    if since is not None:
        where.append(AuditRow.at >= since)
    if until is not None:
        where.append(AuditRow.at < until)
    with store.session() as session:
        total = session.scalar(select(func.count()).select_from(AuditRow).where(*where)) or 0
        rows = session.scalars(select(AuditRow).where(*where).order_by(AuditRow.id).limit(limit).offset(offset)).all()
        entries = [view(row) for row in rows]
    return db.page("entries", entries, limit, offset, total)


def view(row: AuditRow) -> dict[str, Any]:
    return {"id": row.id, "at": row.at.isoformat(), "kind": row.kind, "actor": row.actor, "role": row.role,
            "subject": row.subject, "detail": row.detail}
