"""Active spike alerts: mass problems forming right now, per brand, with example messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from serving.deps import AnyRole, SpikesDep

router = APIRouter(prefix="/v1", tags=["alerts"])


@router.get("/alerts", responses={401: {"description": "missing or invalid X-API-Key"}})
async def alerts(spikes: SpikesDep, _: AnyRole) -> dict[str, Any]:
    """Spikes active now: many similar actionable messages, or a pile-up of crisis risk, for one brand in the
    rolling window, against that brand's usual level. ``as_of`` is the newest message time seen; ``enabled``
    is false when the service runs with TRIAGE_SPIKE_ALERTS=false (nothing is watched)."""
    config, clock = spikes.detector.config, spikes.detector.clock
    return {"enabled": spikes.enabled, "alerts": spikes.detector.active(),
            "as_of": datetime.fromtimestamp(clock, UTC).isoformat(timespec="seconds") if clock else None,
            "window_seconds": config.window_seconds, "similarity": config.similarity}
