"""The escalation map as a living document: read the map in force, replace it (leads), and its history."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Query

from serving.deps import AnyRole, Lead, MapsDep, Person, StoreDep, unprocessable
from serving.schemas import MapChange, RoutingHistory, RoutingMapView
from triage_ml.errors import ConfigError
from triage_ml.store import routing_history
from triage_ml.store.audit import Actor

router = APIRouter(prefix="/v1/routing", tags=["routing"])
ERRORS = {401: {"description": "missing or invalid X-API-Key"}, 403: {"description": "wrong role"}}


@router.get("", response_model=RoutingMapView, responses=ERRORS)
async def get_map(maps: MapsDep, _: AnyRole) -> RoutingMapView:
    """The map in force: its version (a hash of its text, the same on every worker), its YAML and its fields."""
    routes = maps.current
    return RoutingMapView(version=routes.version, yaml=routes.text, map=routes.spec.model_dump(mode="json"))


@router.put("", response_model=RoutingMapView, responses={
    **ERRORS, 409: {"description": "base_version is not the map in force (someone changed it since)"},
    422: {"description": "the map is invalid: the field and the fix; the map in force stays"},
    503: {"description": "the label store is unreachable; the map was not changed"}})
async def put_map(body: MapChange, maps: MapsDep, role: Lead, person: Person) -> RoutingMapView:
    """Replace the map whole (lead or admin): it is validated, written over the map file atomically and used by
    this worker from the next request (the others within TRIAGE_ROUTING_POLL_SECONDS), and recorded in the
    history and the audit trail with who and the note. Send ``base_version`` (from GET) to refuse the change
    if someone else changed the map in the meantime."""
    try:
        await anyio.to_thread.run_sync(lambda: maps.install(body.yaml, Actor(person, role),
                                                            base_version=body.base_version, note=body.note))
    except ConfigError as exc:
        raise unprocessable("yaml", str(exc).removeprefix("yaml: ")) from None
    return await get_map(maps, role)


@router.get("/history", response_model=RoutingHistory, responses=ERRORS)
async def get_history(store: StoreDep, _: Lead,
                      limit: Annotated[int, Query(ge=1, le=100, description="page size")] = 20,
                      offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> RoutingHistory:
    """Every map version the service loaded, newest first: from the file or the API, who, when, the note, and
    a unified diff from the version before."""
    return RoutingHistory(**await anyio.to_thread.run_sync(routing_history.history, store, limit, offset))
