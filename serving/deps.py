"""Typed dependencies: what each route needs, declared in its signature."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from serving.state import ServiceState
from triage_ml.scoring import LoadedModel


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


StateDep = Annotated[ServiceState, Depends(get_state)]


def get_loaded_model(state: StateDep) -> LoadedModel:
    if state.loaded is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no model loaded yet; try again shortly")
    return state.loaded


ModelDep = Annotated[LoadedModel, Depends(get_loaded_model)]


def get_role(state: StateDep, x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None) -> str:
    """The caller's role from ``X-API-Key``. Every key is compared, in constant time, before answering."""
    if not x_api_key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header",
                            headers={"WWW-Authenticate": "ApiKey"})
    given = x_api_key.encode()
    role = None
    for candidate_role, key in state.keys:
        if hmac.compare_digest(given, key.encode()) and role is None:
            role = candidate_role
    if role is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API key", headers={"WWW-Authenticate": "ApiKey"})
    return role


def require(*roles: str) -> Callable[[str], str]:
    """A dependency admitting the given roles (and ``admin``); any other valid key gets 403."""
    allowed = {*roles, "admin"}

    def check(role: Annotated[str, Depends(get_role)]) -> str:
        if role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"role '{role}' may not call this endpoint; it needs: {', '.join(sorted(allowed))}")
        return role

    return check


Scorer = Annotated[str, Depends(require("scorer"))]
Admin = Annotated[str, Depends(require("admin"))]
Agent = Annotated[str, Depends(require("agent"))]
Lead = Annotated[str, Depends(require("lead"))]
AgentOrLead = Annotated[str, Depends(require("agent", "lead"))]
