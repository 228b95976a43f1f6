"""Label Studio's webhook: a lead's submit resolves the dispute within seconds (``review pull`` is the
catch-up path for events that never arrived)."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Body, Header, HTTPException, status

from serving.deps import StateDep
from triage_ml.review.pull import handle_webhook
from triage_ml.review.push import WEBHOOK_HEADER

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
log = logging.getLogger("triage_ml.serving")
ACTIONS = {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED"}


@router.post("/label-studio", responses={
    401: {"description": "missing or wrong shared secret"},
    503: {"description": "webhook not configured, or Label Studio or the label store unreachable"}})
async def label_studio_event(state: StateDep, payload: Annotated[dict[str, Any], Body()],
                             secret: Annotated[str | None, Header(alias=WEBHOOK_HEADER,
                                                                  include_in_schema=False)] = None) -> dict[str, Any]:
    """An annotation was created or updated in Label Studio: read the task back and store the lead's
    answer exactly as ``triage-ml review pull`` would. Other events are acknowledged and ignored."""
    expected = state.settings.label_studio_webhook_secret
    if expected is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "this service has no webhook secret, so it accepts no "
                            "Label Studio events: set TRIAGE_LABEL_STUDIO_WEBHOOK_SECRET")
    if not secret or not hmac.compare_digest(secret.encode(), expected.get_secret_value().encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"missing or wrong {WEBHOOK_HEADER}")
    if state.label_studio is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the service cannot read tasks back from Label "
                            "Studio: set TRIAGE_LABEL_STUDIO_API_KEY")
    action = payload.get("action")
    if action not in ACTIONS:
        return {"action": action, "processed": False}
    report = await anyio.to_thread.run_sync(handle_webhook, state.store, state.label_studio, payload)
    if report is None:
        return {"action": action, "processed": False}
    for line in report.problems + report.disagreements:
        log.warning("label studio webhook: %s", line)
    return {"action": action, "processed": True, "resolved": report.resolved, "answered": report.answered,
            "problems": report.problems, "disagreements": report.disagreements}
