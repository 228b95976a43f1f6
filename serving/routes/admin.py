from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, HTTPException, Path, Response, status

from serving.deps import Admin, KeyRingDep, MapsDep, ModelsDep, Person, StoreDep
from serving.schemas import KeyCreated, KeyInfo, KeyList, KeyRequest, ModelRef, ReloadResult
from triage_ml.errors import ConfigError, ModelNotFoundError
from triage_ml.store import keys
from triage_ml.store.audit import Actor

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post("/reload", response_model=ReloadResult)
async def reload(models: ModelsDep, maps: MapsDep, role: Admin, person: Person) -> ReloadResult:
    """Load the model the alias points to now (atomically) and the escalation map from disk."""
    try:
        changed = await models.reload()
    except ModelNotFoundError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    try:
        await anyio.to_thread.run_sync(maps.reload, Actor(person, role))
        routing = f"reloaded from {maps.path}"
    except ConfigError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"routing map refused, previous map stays in force: {exc}") from None
    loaded = models.loaded
    return ReloadResult(model=ModelRef(name=loaded.name, version=loaded.version),
                        model_changed=changed, routing_map=routing)


# -- personal API keys: one per person, so what a body says about who decided is checked against the key ------
KEY_ERRORS = {401: {"description": "missing or invalid X-API-Key"}, 403: {"description": "not an admin key"},
              503: {"description": "the label store is unreachable; nothing was written"}}


@router.post("/keys", response_model=KeyCreated, status_code=status.HTTP_201_CREATED, responses={
    **KEY_ERRORS, 409: {"description": "the name already has an active key; revoke it first"},
    422: {"description": "unknown role, or a name that is not a plain handle"}})
async def create_key(body: KeyRequest, response: Response, store: StoreDep, keyring: KeyRingDep,
                     role: Admin, person: Person) -> KeyCreated:
    """A key for one person (``name``) with ``role``. The key is in this answer only: the store keeps its hash.
    It works at once on this worker, and on the others within their poll interval."""
    key, view = await anyio.to_thread.run_sync(keys.create_key, store, body.role, body.name, Actor(person, role))
    await keyring.refresh()
    response.headers["Cache-Control"] = "no-store"
    return KeyCreated(**view, key=key)


@router.get("/keys", response_model=KeyList, responses=KEY_ERRORS)
async def list_keys(store: StoreDep, _: Admin) -> KeyList:
    """Every key's person, role, creation and revocation; never a key or its hash."""
    return KeyList(keys=[KeyInfo(**v) for v in await anyio.to_thread.run_sync(keys.list_keys, store)])


@router.delete("/keys/{name}", response_model=KeyInfo, responses={
    **KEY_ERRORS, 404: {"description": "no active key with this name"}})
async def revoke_key(name: Annotated[str, Path(pattern=keys.NAME_PATTERN, description="whose key")], store: StoreDep,
                     keyring: KeyRingDep, role: Admin, person: Person) -> KeyInfo:
    """Revoke a person's active key: this worker refuses it at once, the others within their poll interval."""
    view = await anyio.to_thread.run_sync(keys.revoke_key, store, name, Actor(person, role))
    await keyring.refresh()
    return KeyInfo(**view)
