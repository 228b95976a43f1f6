"""Erasure on request (admin): one customer's messages and every copy the label store keeps of them."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Path

from serving.deps import Admin, Person, StoreDep
from serving.schemas import Erased
from triage_ml.store.audit import Actor
from triage_ml.store.erasure import erase_author

router = APIRouter(prefix="/v1/authors", tags=["privacy"])


@router.delete("/{author}", response_model=Erased, responses={
    401: {"description": "missing or invalid X-API-Key"}, 403: {"description": "not an admin key"},
    503: {"description": "the label store is unreachable; nothing was erased"}})
async def erase(author: Annotated[str, Path(min_length=1, max_length=256, pattern=r"^[^\x00]+$",
                                             description="the customer's handle, with or without @")],
                store: StoreDep, role: Admin, person: Person) -> Erased:
    """Erase the author's messages: texts become [erased] and the handle goes, in the messages, the decisions'
    stored events, the predictions' explanations and context, and the drafted replies. Labels stay, anonymous.
    Answers what was erased (zeros for an author the store does not know, or erased before); audited."""
    counts = await anyio.to_thread.run_sync(erase_author, store, author, Actor(person, role))
    return Erased(**counts)
