from __future__ import annotations

import anyio
from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from serving.deps import MetricsDep, ModelsDep, StoreDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(models: ModelsDep, store: StoreDep) -> JSONResponse:
    """Ready when a model is loaded and both stores answer: the label database and the model registry."""
    database = await anyio.to_thread.run_sync(store.reachable)
    registry = await anyio.to_thread.run_sync(models.registry_reachable)
    loaded = models.loaded
    ready = loaded is not None and database and registry
    body = {"ready": ready, "model_loaded": loaded is not None, "store_reachable": database,
            "registry_reachable": registry, "model_version": loaded.version if loaded else None}
    return JSONResponse(body, status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE)


@router.get("/metrics", include_in_schema=False)
async def metrics(service_metrics: MetricsDep) -> Response:
    return Response(generate_latest(service_metrics.registry), media_type=CONTENT_TYPE_LATEST)
