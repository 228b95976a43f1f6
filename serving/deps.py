"""Typed dependencies: what each route needs, declared in its signature (as in the FastAPI full-stack template):
a route asks for the narrow part it uses (``SettingsDep``, ``StoreDep``, ``ModelDep``, ...) and for the caller's
role (``Scorer``, ``Agent``, ``Lead``, ``Admin``, ``AnyRole``), never for the whole service state."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from serving.escalation_map import MapHolder
from serving.keyring import KeyRing
from serving.metrics import ServiceMetrics
from serving.models import ModelHolder
from serving.recorder import Recorder
from serving.shadow import ShadowScorer
from serving.spike_watch import SpikeWatcher
from serving.state import ServiceState
from triage_ml.labels.disputes import DisputePolicy
from triage_ml.messages import Message
from triage_ml.review.client import LabelStudio
from triage_ml.review.push import WEBHOOK_HEADER
from triage_ml.scoring import LoadedModel, ScoredMessage
from triage_ml.settings import Settings
from triage_ml.store.db import Store
from triage_ml.store.keys import Identity, hash_key
from triage_ml.times import parse_since


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


StateDep = Annotated[ServiceState, Depends(get_state)]  # for the parts below; routes ask for a part


def get_loaded_model(state: StateDep) -> LoadedModel:
    if state.models.loaded is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no model loaded yet; try again shortly")
    return state.models.loaded


ModelDep = Annotated[LoadedModel, Depends(get_loaded_model)]


def get_settings_part(state: StateDep) -> Settings:
    return state.settings


def get_store(state: StateDep) -> Store:
    return state.store


def get_models(state: StateDep) -> ModelHolder:
    return state.models


def get_maps(state: StateDep) -> MapHolder:
    return state.maps


def get_keyring(state: StateDep) -> KeyRing:
    return state.keyring


def get_spikes(state: StateDep) -> SpikeWatcher:
    return state.spikes


def get_metrics(state: StateDep) -> ServiceMetrics:
    return state.metrics


def get_dispute_policy(state: StateDep) -> DisputePolicy:
    return state.dispute_policy


def get_label_studio(state: StateDep) -> LabelStudio | None:
    return state.label_studio


def get_batch_scorer(state: StateDep) -> BatchScorer:
    return state.score


def get_recorder(state: StateDep) -> Recorder:
    return state.recorder


def get_shadow(state: StateDep) -> ShadowScorer:
    return state.shadow


# (messages, caller) -> (results, the model that produced them), through the micro-batcher
BatchScorer = Callable[[list[Message], str | None], Awaitable[tuple[list[ScoredMessage], LoadedModel]]]
ScoreDep = Annotated[BatchScorer, Depends(get_batch_scorer)]
RecorderDep = Annotated[Recorder, Depends(get_recorder)]
ShadowDep = Annotated[ShadowScorer, Depends(get_shadow)]
SettingsDep = Annotated[Settings, Depends(get_settings_part)]
StoreDep = Annotated[Store, Depends(get_store)]
ModelsDep = Annotated[ModelHolder, Depends(get_models)]
MapsDep = Annotated[MapHolder, Depends(get_maps)]
KeyRingDep = Annotated[KeyRing, Depends(get_keyring)]
SpikesDep = Annotated[SpikeWatcher, Depends(get_spikes)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
DisputePolicyDep = Annotated[DisputePolicy, Depends(get_dispute_policy)]
LabelStudioDep = Annotated[LabelStudio | None, Depends(get_label_studio)]


def authenticate(keys: list[tuple[str, str]], given: str | None, people: Mapping[str, Identity]) -> Identity:
    """Who holds the key ``given``; 401 when it is missing or unknown. ``keys`` are TRIAGE_API_KEYS' (role, key)
    pairs, each compared in constant time before answering; they name nobody. ``people`` maps the SHA-256 of each
    active personal key to its role and person (``ServiceState.people``): a lookup by hash, whose timing can tell
    about the hash only, never about a key."""
    if not given:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header",
                            headers={"WWW-Authenticate": "ApiKey"})
    given_bytes = given.encode()
    role = None
    for candidate_role, key in keys:
        if hmac.compare_digest(given_bytes, key.encode()) and role is None:
            role = candidate_role
    identity = Identity(role, None) if role is not None else people.get(hash_key(given))
    if identity is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API key", headers={"WWW-Authenticate": "ApiKey"})
    return identity


def check_webhook_secret(settings: Settings | None, given: str | None) -> None:
    """401 unless ``given`` is the configured Label Studio webhook secret (compared in constant time)."""
    expected = settings.label_studio_webhook_secret if settings is not None else None
    if expected is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "this service has no webhook secret, so it accepts no "
                            "Label Studio events: set TRIAGE_LABEL_STUDIO_WEBHOOK_SECRET")
    if not given or not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"missing or wrong {WEBHOOK_HEADER}")


def get_identity(request: Request, keyring: KeyRingDep,
                 x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None) -> Identity:
    """The caller's role and person: the guard (serving/middleware.py) found them before the body was read."""
    role = getattr(request.state, "role", None)
    if role is not None:
        return Identity(role, getattr(request.state, "person", None))
    return authenticate(keyring.keys, x_api_key, keyring.people)


def get_role(identity: Annotated[Identity, Depends(get_identity)]) -> str:
    return identity.role


def get_person(identity: Annotated[Identity, Depends(get_identity)]) -> str | None:
    """The person whose key this is; None for a TRIAGE_API_KEYS key (a service account's)."""
    return identity.person


Person = Annotated[str | None, Depends(get_person)]


def speaks_for(person: str | None, named: str | None, field: str) -> str:
    """The person a body names in ``field`` (e.g. ``decisions.0.agent``), checked against the key: a personal key
    may name only its own person (403 otherwise), and leaving the field out means them; a service account's key
    names nobody, so the body must (422)."""
    if person is None:
        if named is None:
            raise unprocessable(field, "field required: this API key is a service account's, so name the person; "
                                "a personal key (`triage-ml keys create`) fills it in")
        return named
    if named is not None and named != person:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{field}: this key belongs to '{person}'")
    return person


def unprocessable(field: str, message: str) -> HTTPException:
    """A 422 in the shape every validation error has: [{field, message}]."""
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{"field": field, "message": message}])


def query_time(value: str | None, field: str) -> datetime | None:
    """A time query parameter: a duration before now (30d, 24h, 90m) or an ISO date; 422 naming ``field``."""
    if value is None:
        return None
    try:
        return parse_since(value)
    except ValueError as exc:
        raise unprocessable(field, str(exc)) from None


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
AnyRole = Annotated[str, Depends(require("scorer", "agent", "lead"))]
