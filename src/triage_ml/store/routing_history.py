"""The escalation map's history: every version a service loaded, from its file or through the API, with who,
when and the change from the version before. A version is added only when its text differs from the latest one,
so several workers that load the same change record it once (``previous_id`` is unique: the loser of a race
retries, finds the winner's row and adds nothing)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage_ml.routing import content_hash
from triage_ml.store import audit
from triage_ml.store.audit import Actor
from triage_ml.store.db import Store, page
from triage_ml.store.tables import RoutingVersionRow, utcnow


def record_version(store: Store, text: str, source: str, actor: Actor, note: str | None = None, *,
                   before_commit: Callable[[], None] | None = None) -> bool:
    """Add ``text`` as the newest version unless it is the newest already; True when added (and audited as
    ``map.changed`` in the same transaction). ``before_commit`` runs last in the transaction: if it raises,
    nothing is recorded."""

    def tx(session: Session) -> bool:
        latest = _latest(session)
        digest = content_hash(text)
        if latest is not None and latest.content_hash == digest:
            if before_commit is not None:
                before_commit()
            return False
        row = RoutingVersionRow(previous_id=None if latest is None else latest.id, content_hash=digest, content=text,
                                source=source, actor=actor.name, note=note, loaded_at=utcnow())
        session.add(row)
        session.flush()
        added, removed = _changed_lines(None if latest is None else latest.content, text)
        audit.record(session, "map.changed", actor, f"routing:{digest[:12]}", source=source, note=note,
                     previous=None if latest is None else latest.content_hash[:12], lines_added=added,
                     lines_removed=removed)
        if before_commit is not None:
            before_commit()
        return True

    return store.write(tx)


def history(store: Store, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """Versions, newest first, each with a unified diff from the one before it:
    {versions, limit, offset, total, next_offset}."""
    with store.session() as session:
        total = session.scalar(select(func.count()).select_from(RoutingVersionRow)) or 0
        rows = session.scalars(select(RoutingVersionRow).order_by(RoutingVersionRow.id.desc())
                               .limit(limit).offset(offset)).all()
        previous_ids = [r.previous_id for r in rows if r.previous_id is not None]
        previous = {r.id: r for r in session.scalars(select(RoutingVersionRow)
                                                     .where(RoutingVersionRow.id.in_(previous_ids)))}
        versions = [_view(r, previous.get(r.previous_id) if r.previous_id else None) for r in rows]
    return page("versions", versions, limit, offset, total)


def _latest(session: Session) -> RoutingVersionRow | None:
    return session.scalar(select(RoutingVersionRow).order_by(RoutingVersionRow.id.desc()).limit(1))


def _diff(before: str | None, after: str) -> list[str]:
    return list(difflib.unified_diff((before or "").splitlines(), after.splitlines(), "previous", "this",
                                     lineterm="", n=1))


def _changed_lines(before: str | None, after: str) -> tuple[int, int]:
    lines = _diff(before, after)[2:]
    return (sum(1 for line in lines if line.startswith("+")), sum(1 for line in lines if line.startswith("-")))


def _view(row: RoutingVersionRow, previous: RoutingVersionRow | None) -> dict[str, Any]:
    return {"version": row.content_hash[:12], "loaded_at": row.loaded_at.isoformat(), "source": row.source,
            "actor": row.actor, "note": row.note,
            "previous": None if previous is None else previous.content_hash[:12],
            "diff": "\n".join(_diff(None if previous is None else previous.content, row.content))}
