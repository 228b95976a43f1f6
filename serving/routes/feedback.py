"""Agent decisions in (role ``agent``); disputes for leads (role ``lead``)."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, HTTPException, Path, Query, status

from serving.deps import (
    Agent,
    AgentOrLead,
    DisputePolicyDep,
    Lead,
    MapsDep,
    Person,
    SettingsDep,
    StoreDep,
    speaks_for,
)
from serving.schemas import Dispute, DisputeList, FeedbackRequest, FeedbackResponse, FlagRequest, Resolution
from triage_ml.labels import feedback

router = APIRouter(prefix="/v1", tags=["feedback"])
DisputeId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a dispute's id")]
ERRORS = {401: {"description": "missing or invalid X-API-Key"},
          403: {"description": "wrong role, or a personal key naming someone else"},
          503: {"description": "the label store is unreachable; nothing was written"}}


@router.post("/feedback", response_model=FeedbackResponse, responses={
    **ERRORS, 404: {"description": "unknown message_id and no text"},
    409: {"description": "event_id reused for a different decision"}, 413: {"description": "batch over the limit"},
    422: {"description": "invalid decision"}})
async def post_feedback(body: FeedbackRequest, settings: SettingsDep, store: StoreDep, policy: DisputePolicyDep,
                        maps: MapsDep, role: Agent, person: Person) -> FeedbackResponse:
    """Record agent decisions as labels. Idempotent per ``event_id``: a replay answers the same and writes
    nothing. The batch is stored atomically, and the answer comes only after the commit. With a personal key,
    every decision is the key's agent's: ``agent`` may be left out, and naming anyone else refuses the batch."""
    limit = settings.max_decisions
    if len(body.decisions) > limit:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                            f"decisions: {len(body.decisions)} in one request; the limit is {limit}")
    decisions = [d.by(speaks_for(person, d.agent, f"decisions.{i}.agent")) for i, d in enumerate(body.decisions)]
    results = await anyio.to_thread.run_sync(feedback.record_decisions, store, decisions, policy, role,
                                              maps.current)
    return FeedbackResponse(results=results)


@router.post("/disputes", response_model=Dispute, status_code=status.HTTP_201_CREATED,
             responses={**ERRORS, 404: {"description": "unknown message_id and no text"}})
async def flag(body: FlagRequest, store: StoreDep, role: AgentOrLead, person: Person) -> Dispute:
    """Flag a message's label by hand: opens a dispute, or adds the reason to the open one."""
    by = speaks_for(person, body.by, "by")
    view = await anyio.to_thread.run_sync(feedback.flag_dispute, store, body.message_id, by, role,
                                          body.reason, body.text)
    return Dispute(**view)


@router.get("/disputes", response_model=DisputeList, responses=ERRORS)
async def list_disputes(store: StoreDep, _: Lead,
                        dispute_state: Annotated[Literal["open", "resolved", "all"], Query(alias="state")] = "open",
                        limit: Annotated[int, Query(ge=1, le=100, description="page size")] = 50,
                        offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> DisputeList:
    """Disputes with the message, the latest prediction, every decision and why each is disputed, one page
    at a time: ``total`` counts them all and ``next_offset`` is where the next page starts."""
    page = await anyio.to_thread.run_sync(feedback.dispute_page, store,
                                          None if dispute_state == "all" else dispute_state, limit, offset)
    return DisputeList(**{**page, "disputes": [Dispute(**v) for v in page["disputes"]]})


@router.get("/disputes/{dispute_id}", response_model=Dispute,
            responses={**ERRORS, 404: {"description": "no such dispute"}})
async def get_dispute(dispute_id: DisputeId, store: StoreDep, _: Lead) -> Dispute:
    return Dispute(**await anyio.to_thread.run_sync(feedback.get_dispute, store, dispute_id))


@router.post("/disputes/{dispute_id}/resolve", response_model=Dispute, responses={
    **ERRORS, 404: {"description": "no such dispute"}, 409: {"description": "already resolved"}})
async def resolve(dispute_id: DisputeId, body: Resolution, store: StoreDep, role: Lead, person: Person) -> Dispute:
    """A lead's gold label: stored with source ``lead``, and the dispute is closed."""
    lead = speaks_for(person, body.lead, "lead")
    view = await anyio.to_thread.run_sync(feedback.resolve_dispute, store, dispute_id, lead,
                                          body.labels(), body.note, role)
    return Dispute(**view)
