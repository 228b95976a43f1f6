from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status

from serving.deps import RecorderDep, ScoreDep, Scorer, SettingsDep, ShadowDep
from serving.schemas import ModelRef, ScoreRequest, ScoreResponse, ScoreResult

router = APIRouter(prefix="/v1", tags=["score"])


@router.post("/score", response_model=ScoreResponse, responses={
    401: {"description": "missing or invalid X-API-Key"}, 403: {"description": "role is not scorer"},
    413: {"description": "batch or body over the limit"}, 422: {"description": "invalid message"},
    429: {"description": "this key's rate limit; retry after the Retry-After header's seconds"}})
async def score_messages(body: ScoreRequest, request: Request, settings: SettingsDep, score: ScoreDep,
                         recorder: RecorderDep, shadow: ShadowDep, _: Scorer) -> ScoreResponse:
    """Score one message or a batch: actionable, tier, crisis risk, route and a short explanation.

    Results for messages with a ``message_id`` are recorded in the label store; scoring the same id again
    with the same model version returns the recorded result."""
    limits = settings
    if len(body.messages) > limits.max_batch:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                            f"messages: {len(body.messages)} in one request; the limit is {limits.max_batch}")
    messages = [m.to_message() for m in body.messages]
    results, loaded = await score(messages, request.state.caller)
    if any(m.message_id for m in messages):
        results = await recorder.record(loaded, messages, results)
    shadow.follow(messages, results)
    return ScoreResponse(model=ModelRef(name=loaded.name, version=loaded.version),
                         results=[ScoreResult(**r.to_dict(), model_version=loaded.version) for r in results])
