from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from serving.deps import Admin, StateDep
from serving.schemas import ModelRef, ReloadResult
from triage_ml.errors import ConfigError, ModelNotFoundError

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post("/reload", response_model=ReloadResult)
async def reload(state: StateDep, _: Admin) -> ReloadResult:
    """Load the model the alias points to now (atomically) and the escalation map from disk."""
    try:
        changed = await state.reload_model()
    except ModelNotFoundError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    try:
        state.reload_routes()
        routing = f"reloaded from {state.settings.routing_path}"
    except ConfigError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"routing map refused, previous map stays in force: {exc}") from None
    return ReloadResult(model=ModelRef(name=state.loaded.name, version=state.loaded.version),
                        model_changed=changed, routing_map=routing)
