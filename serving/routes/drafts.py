"""Sign-off before a reply goes out: agents submit drafts, leads approve or reject the ones that need it."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Path, Query, status

from serving.deps import Agent, AgentOrLead, Lead, MapsDep, Person, StoreDep, speaks_for
from serving.schemas import Draft, DraftList, DraftRequest, DraftVerdict
from triage_ml.labels import drafts

router = APIRouter(prefix="/v1/drafts", tags=["drafts"])
DraftId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a draft's id")]
ERRORS = {401: {"description": "missing or invalid X-API-Key"},
          403: {"description": "wrong role, a personal key naming someone else, or one's own draft"},
          503: {"description": "the label store is unreachable; nothing was written"}}


@router.post("", response_model=Draft, status_code=status.HTTP_201_CREATED, responses={
    **ERRORS, 404: {"description": "the message was never scored with this message_id"},
    409: {"description": "event_id reused for a different draft"}, 422: {"description": "invalid draft"}})
async def submit(body: DraftRequest, store: StoreDep, maps: MapsDep, role: Agent, person: Person) -> Draft:
    """An agent's reply to a message. ``pending`` when the map asks for sign-off (the message's route, or the
    agent's probation: ``approval`` says by whom and why), else ``approved`` at once. Idempotent per
    ``event_id``: a replay answers the same and writes nothing."""
    agent = speaks_for(person, body.agent, "agent")
    view = await anyio.to_thread.run_sync(lambda: drafts.submit(store, maps.current, event_id=body.event_id,
                                                                message_id=body.message_id, agent=agent,
                                                                text=body.text, role=role))
    return Draft(**view)


@router.get("", response_model=DraftList, responses=ERRORS)
async def list_drafts(store: StoreDep, _: Lead,
                      draft_state: Annotated[Literal["pending", "approved", "rejected", "all"],
                                             Query(alias="state")] = "pending",
                      agent: Annotated[str | None, Query(max_length=256, description="one agent's drafts")] = None,
                      limit: Annotated[int, Query(ge=1, le=100, description="page size")] = 50,
                      offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> DraftList:
    """Drafts, oldest first (by default the ones waiting for sign-off), with the message they answer."""
    page = await anyio.to_thread.run_sync(lambda: drafts.page(store, None if draft_state == "all" else draft_state,
                                                              limit, offset, agent))
    return DraftList(**{**page, "drafts": [Draft(**d) for d in page["drafts"]]})


@router.get("/{draft_id}", response_model=Draft, responses={**ERRORS, 404: {"description": "no such draft"}})
async def get_draft(draft_id: DraftId, store: StoreDep, _: AgentOrLead) -> Draft:
    return Draft(**await anyio.to_thread.run_sync(drafts.get, store, draft_id))


async def _decide(draft_id: int, body: DraftVerdict, store: StoreDep, role: str, person: str | None,
                  approve: bool) -> Draft:
    lead = speaks_for(person, body.lead, "lead")
    return Draft(**await anyio.to_thread.run_sync(lambda: drafts.decide(store, draft_id, approve=approve, lead=lead,
                                                                        role=role, note=body.note)))


DECIDE_ERRORS = {**ERRORS, 404: {"description": "no such draft"},
                 409: {"description": "already approved or rejected (by someone, or at submission)"}}


@router.post("/{draft_id}/approve", response_model=Draft, responses=DECIDE_ERRORS)
async def approve(draft_id: DraftId, body: DraftVerdict, store: StoreDep, role: Lead, person: Person) -> Draft:
    """Sign a pending draft off (a lead; never one's own draft): the agent may send it."""
    return await _decide(draft_id, body, store, role, person, approve=True)


@router.post("/{draft_id}/reject", response_model=Draft, responses=DECIDE_ERRORS)
async def reject(draft_id: DraftId, body: DraftVerdict, store: StoreDep, role: Lead, person: Person) -> Draft:
    """Send a pending draft back with a note (a lead; never one's own draft)."""
    return await _decide(draft_id, body, store, role, person, approve=False)
