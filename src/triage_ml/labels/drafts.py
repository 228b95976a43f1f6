"""Sign-off before a reply goes out: an agent's draft reply waits for a lead's (or PR's) approval when the
escalation map's ``approval`` section asks for it (the message's route, or the agent's probation).

A draft is submitted once per ``event_id`` (a replay answers the same); it is ``pending`` when sign-off is
required, else ``approved`` at once. A lead approves or rejects a pending draft once, never their own. Every
step is written with its audit entry in one transaction.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage_ml.errors import ConflictError, ForbiddenError, NotFoundError
from triage_ml.routing import EscalationMap, SignOff
from triage_ml.store import audit, db
from triage_ml.store.audit import Actor
from triage_ml.store.db import Store
from triage_ml.store.tables import DraftRow, MessageRow, PredictionRow, utcnow

STATES = ("pending", "approved", "rejected")


def sign_off_for(session: Session, routes: EscalationMap, message_id: str, agent: str, on: date) -> SignOff:
    """What a reply by ``agent`` to the message needs: its latest recorded route's sign-off and the agent's
    probation. A message the service never scored has no route to check: only the probation applies (drafts
    are accepted only for scored messages)."""
    result = session.scalar(select(PredictionRow.result).where(PredictionRow.message_id == message_id)
                            .order_by(PredictionRow.id.desc()).limit(1))
    return routes.sign_off("" if result is None else result["route"]["rule"], agent, on)


def approved_reply(session: Session, message_id: str) -> DraftRow | None:
    """The message's latest approved draft, if any."""
    return session.scalar(select(DraftRow).where(DraftRow.message_id == message_id, DraftRow.state == "approved")
                          .order_by(DraftRow.id.desc()).limit(1))


def submit(store: Store, routes: EscalationMap, *, event_id: str, message_id: str, agent: str, text: str,
           role: str | None) -> dict[str, Any]:
    """Store a draft: ``pending`` when sign-off is required, else ``approved``. Idempotent per ``event_id``."""
    digest = hashlib.sha256(json.dumps([message_id, agent, text]).encode()).hexdigest()

    def tx(session: Session) -> dict[str, Any]:
        stored = session.scalar(select(DraftRow).where(DraftRow.event_id == event_id))
        if stored is not None:
            if stored.payload_hash != digest:
                raise ConflictError(f"event_id: '{event_id}' was already used for a different draft; a new draft "
                                    "needs a new event_id")
            return view(stored)
        if session.get(MessageRow, message_id) is None:
            raise NotFoundError(f"message_id: '{message_id}' is unknown to the store; score it with this "
                                "message_id first, so that its route is known")
        now = utcnow()
        need = sign_off_for(session, routes, message_id, agent, now.date())
        row = DraftRow(event_id=event_id, message_id=message_id, agent=agent, text=text, payload_hash=digest,
                       state="pending" if need.required else "approved", approval=need.to_dict(), submitted_at=now)
        session.add(row)
        session.flush()
        audit.record(session, "draft.submitted", Actor(agent, role), f"draft:{row.id}", message_id=message_id,
                     state=row.state, approval=need.to_dict())
        return view(row)

    return store.write(tx)


def decide(store: Store, draft_id: int, *, approve: bool, lead: str, role: str | None,
           note: str | None) -> dict[str, Any]:
    """Approve or reject a pending draft. NotFoundError for an unknown draft, ForbiddenError for one's own,
    ConflictError for one already decided (the same lead repeating the same verdict gets the same answer)."""
    verdict = "approved" if approve else "rejected"

    def tx(session: Session) -> dict[str, Any]:
        row = session.get(DraftRow, draft_id, with_for_update=True)
        if row is None:
            raise NotFoundError(f"draft {draft_id} does not exist; GET /v1/drafts?state=pending lists the waiting ones")
        if row.agent == lead:
            raise ForbiddenError(f"draft {draft_id} is {lead}'s own: another lead signs it off")
        if row.state != "pending":
            if row.state == verdict and row.decided_by == lead:
                return view(row)  # a replay of this very decision
            by = f" by {row.decided_by}" if row.decided_by else " at submission (no sign-off was required)"
            raise ConflictError(f"draft {draft_id} was already {row.state}{by}; a draft is decided once")
        row.state, row.decided_by, row.decided_at, row.note = verdict, lead, utcnow(), note
        session.flush()
        audit.record(session, f"draft.{verdict}", Actor(lead, role), f"draft:{row.id}", message_id=row.message_id,
                     agent=row.agent, note=note)
        return view(row)

    return store.write(tx)


def page(store: Store, state: str | None, limit: int, offset: int, agent: str | None = None) -> dict[str, Any]:
    """Drafts by id, oldest first: {drafts, limit, offset, total, next_offset}."""
    where = [] if state is None else [DraftRow.state == state]
    if agent is not None:
        where.append(DraftRow.agent == agent)
    with store.session() as session:
        total = session.scalar(select(func.count()).select_from(DraftRow).where(*where)) or 0
        rows = session.scalars(select(DraftRow).where(*where).order_by(DraftRow.id).limit(limit).offset(offset)).all()
        drafts = [view(r, session.get(MessageRow, r.message_id)) for r in rows]
    return db.page("drafts", drafts, limit, offset, total)


def get(store: Store, draft_id: int) -> dict[str, Any]:
    with store.session() as session:
        row = session.get(DraftRow, draft_id)
        if row is None:
            raise NotFoundError(f"draft {draft_id} does not exist")
        return view(row, session.get(MessageRow, row.message_id))


def view(row: DraftRow, message: MessageRow | None = None) -> dict[str, Any]:
    return {"id": row.id, "event_id": row.event_id, "message_id": row.message_id, "agent": row.agent,
            "text": row.text, "state": row.state, "approval": row.approval,
            "submitted_at": row.submitted_at.isoformat(),
            "decided_at": None if row.decided_at is None else row.decided_at.astimezone(UTC).isoformat(),
            "decided_by": row.decided_by, "note": row.note,
            "message_text": None if message is None else message.text}


