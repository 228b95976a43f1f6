"""Customer history is personal data: erase an author's messages on request, and purge texts past retention.

Erasing a message replaces its text with ``[erased]`` and removes its author's handle. The same happens to
every copy the store keeps: the text and handle inside a decision's stored event, the explanation's terms and
the context recorded with a prediction, and the replies drafted to it. What stays is anonymous: the message id,
channel, brand and times, its labels, predictions' scores, and the decisions' actions and agents. Each erasure
is one transaction with its ``erasure`` audit entry, which names the author only by a hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from triage_ml.store import audit
from triage_ml.store.audit import Actor
from triage_ml.store.db import Store, chunks
from triage_ml.store.tables import DecisionRow, DraftRow, MessageRow, PredictionRow

ERASED: Final = "[erased]"
_PERSONAL_EVENT_FIELDS: Final = ("text", "author")


def author_key(author: str) -> str:
    """How the audit trail names an erased author: a hash, so that the entry does not keep the handle."""
    return "sha256:" + hashlib.sha256(author.lower().lstrip("@").encode()).hexdigest()[:16]


def erase_author(store: Store, author: str, actor: Actor) -> dict[str, int]:
    """Erase every message of ``author`` (with or without the @, any case) and its copies; the counts of what
    was erased. Erasing again erases nothing more."""
    handle = author.lower().lstrip("@")

    def tx(session: Session) -> dict[str, int]:
        ids = session.scalars(select(MessageRow.id).where(
            func.lower(func.ltrim(MessageRow.author, "@")) == handle)).all()
        counts = _scrub(session, ids)
        audit.record(session, "erasure", actor, f"author:{author_key(author)}", reason="request", **counts)
        return counts

    return store.write(tx)


def purge_older_than(store: Store, days: float, actor: Actor, now: datetime | None = None) -> dict[str, int]:
    """Erase the messages posted (else first seen) more than ``days`` ago that are not erased yet."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)

    def tx(session: Session) -> dict[str, int]:
        ids = session.scalars(select(MessageRow.id).where(
            func.coalesce(MessageRow.created_at, MessageRow.first_seen) < cutoff,
            or_(MessageRow.text != ERASED, MessageRow.author.is_not(None)))).all()
        counts = _scrub(session, ids)
        if counts["messages"]:
            audit.record(session, "erasure", actor, None, reason="retention", days=days,
                         before=cutoff.isoformat(), **counts)
        return counts

    return store.write(tx)


def _scrub(session: Session, ids: Sequence[str]) -> dict[str, int]:
    counts = {"messages": 0, "predictions": 0, "decisions": 0, "drafts": 0}
    for chunk in chunks(ids):
        for message in session.scalars(select(MessageRow).where(MessageRow.id.in_(chunk))):
            message.text, message.author = ERASED, None
            counts["messages"] += 1
        for prediction in session.scalars(select(PredictionRow).where(PredictionRow.message_id.in_(chunk))):
            prediction.result = _scrubbed_result(prediction.result)  # a new dict: the JSON column sees it
            counts["predictions"] += 1
        for decision in session.scalars(select(DecisionRow).where(DecisionRow.message_id.in_(chunk))):
            if any(k in decision.payload for k in _PERSONAL_EVENT_FIELDS):
                decision.payload = {k: (ERASED if k == "text" else None) if k in _PERSONAL_EVENT_FIELDS else v
                                    for k, v in decision.payload.items()}
            counts["decisions"] += 1
        for draft in session.scalars(select(DraftRow).where(DraftRow.message_id.in_(chunk))):
            draft.text = ERASED
            counts["drafts"] += 1
    session.flush()
    return counts


def _scrubbed_result(result: dict[str, Any]) -> dict[str, Any]:
    """A recorded result without what came from the text or the author: the explanation's summary and terms
    (they quote the text) and the context (it names the author). The scores stay, and so do the nearest
    training examples it cited: they are not this customer's."""
    explanation = result.get("explanation") or {}
    return {**result, "context": None,
            "explanation": {**explanation, "summary": ERASED, "terms": [], "similar": explanation.get("similar", [])}}
