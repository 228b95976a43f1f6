"""Reports for leads: how each agent and the team decide, how fast, and how well."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query

from serving.deps import Lead, SettingsDep, StoreDep, query_time
from triage_ml.monitoring.agents import SLA, agent_report

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.get("/agents", responses={401: {"description": "missing or invalid X-API-Key"},
                                  403: {"description": "not a lead or admin key"},
                                  422: {"description": "a since or until that does not parse"},
                                  503: {"description": "the label store is unreachable"}})
async def agents(store: StoreDep, settings: SettingsDep, _: Lead,
                 since: Annotated[str, Query(max_length=64, description="30d, 24h, 90m before now, or an ISO date")]
                 = "30d",
                 until: Annotated[str | None, Query(max_length=64, description="like since; default now")] = None,
                 ) -> dict[str, Any]:
    """Per agent and for the team: decisions by action, first response time (median, p90) and SLA met per tier,
    agreement with leads' gold labels per head, labels overturned, disputes opened, drafts and replies sent
    without a required sign-off (definitions in the README, "Agent performance"). ``response_minutes`` holds
    every first response time, for plotting."""
    start = query_time(since, "since")
    end = query_time(until, "until") or datetime.now(UTC)
    sla = SLA(settings.sla_tier1_minutes, settings.sla_tier2_minutes)
    return await anyio.to_thread.run_sync(agent_report, store, start, end, sla)
