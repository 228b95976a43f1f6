"""The audit trail (admin): every acknowledged write, who made it and when, filtered and paged."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Query

from serving.deps import Admin, StoreDep, query_time, unprocessable
from serving.schemas import AuditPage
from triage_ml.store import audit

router = APIRouter(prefix="/v1", tags=["audit"])
Kind = Annotated[str | None, Query(max_length=32, description=(
    "one kind (e.g. decision, draft.approved) or a family (dispute, draft, model, ...)"))]
Time = Annotated[str | None, Query(max_length=64, description="30d, 24h, 90m before now, or an ISO date")]


@router.get("/audit", response_model=AuditPage, responses={
    401: {"description": "missing or invalid X-API-Key"}, 403: {"description": "not an admin key"},
    422: {"description": "an unknown kind, or a time that does not parse"},
    503: {"description": "the label store is unreachable"}})
async def read_audit(store: StoreDep, _: Admin,
                     kind: Kind = None,
                     actor: Annotated[str | None, Query(max_length=256, description="the agent or lead")] = None,
                     since: Time = None, until: Time = None,
                     limit: Annotated[int, Query(ge=1, le=500, description="page size")] = 100,
                     offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> AuditPage:
    """Audit entries, oldest first: decisions, lead labels, disputes opened and resolved, drafts and sign-offs,
    model promotions and rollbacks, map changes, keys. ``total`` counts every match; ``next_offset`` is where
    the next page starts."""
    if kind is not None:
        try:
            audit.check_kind(kind)
        except ValueError as exc:
            raise unprocessable("kind", str(exc)) from None
    start, end = query_time(since, "since"), query_time(until, "until")
    page = await anyio.to_thread.run_sync(lambda: audit.page(store, kind=kind, actor=actor, since=start, until=end,
                                                             limit=limit, offset=offset))
    return AuditPage(**page)
