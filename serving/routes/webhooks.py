"""Label Studio's webhook: a lead's submit resolves the dispute within seconds (``review pull`` is the
catch-up path for events that never arrived)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, HTTPException, status

from serving.deps import LabelStudioDep, SettingsDep, StoreDep, check_webhook_secret
from serving.schemas import LabelStudioEvent
from triage_ml.review.pull import handle_webhook
from triage_ml.review.push import WEBHOOK_HEADER

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
log = logging.getLogger("triage_ml.serving")
ACTIONS = {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED"}


@router.post("/label-studio", responses={
    401: {"description": "missing or wrong shared secret"}, 422: {"description": "malformed event"},
    503: {"description": "webhook not configured, or Label Studio or the label store unreachable"}})
async def label_studio_event(settings: SettingsDep, store: StoreDep, label_studio: LabelStudioDep,
                             event: LabelStudioEvent,
                             secret: Annotated[str | None, Header(alias=WEBHOOK_HEADER,
                                                                  include_in_schema=False)] = None) -> dict[str, Any]:
    """An annotation was created or updated in Label Studio: read the task back and store the lead's
    answer exactly as ``triage-ml review pull`` would. Other events are acknowledged and ignored."""
    check_webhook_secret(settings, secret)  # the guard checked it before the body was read; so does this
    if label_studio is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the service cannot read tasks back from Label "
                            "Studio: set TRIAGE_LABEL_STUDIO_API_KEY")
    action = event.action
    if action not in ACTIONS:
        return {"action": action, "processed": False}
    payload = event.model_dump(exclude_none=True)
    report = await anyio.to_thread.run_sync(handle_webhook, store, label_studio, payload)
    if report is None:
        return {"action": action, "processed": False}
    for line in report.problems + report.disagreements:
        log.warning("label studio webhook: %s", line)
    return {"action": action, "processed": True, "resolved": report.resolved, "answered": report.answered,
            "problems": report.problems, "disagreements": report.disagreements}
