from __future__ import annotations

from fastapi import APIRouter

from serving.deps import ModelDep, Scorer
from serving.schemas import ModelInfo

router = APIRouter(prefix="/v1", tags=["model"])


@router.get("/model", response_model=ModelInfo)
async def model_info(loaded: ModelDep, _: Scorer) -> ModelInfo:
    """The model being served: registry name, version, alias, training date, thresholds, metrics."""
    meta = loaded.model.metadata
    return ModelInfo(name=loaded.name, version=loaded.version, alias=loaded.alias, run_id=loaded.run_id,
                     trained_at=meta.get("trained_at"), loaded_at=loaded.loaded_at,
                     taxonomy_version=loaded.model.taxonomy_version, thresholds=loaded.model.thresholds,
                     metrics=meta.get("metrics", {}))
