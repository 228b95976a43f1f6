"""Request and response shapes of the public API (``/v1``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

from triage_ml.data.schema import MAX_TEXT_CHARS

Id = Annotated[StrictStr, Field(max_length=256)]


class MessageIn(BaseModel):
    """One inbound message. Only ``text`` is required; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
    text: Annotated[StrictStr, Field(max_length=MAX_TEXT_CHARS, description="the message as received")]
    message_id: Id | None = None
    channel: Id | None = None
    brand: Id | None = None
    author: Id | None = None
    conversation_id: Id | None = None
    created_at: datetime | None = None
    is_private: StrictBool | None = None

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is empty or whitespace only; send the message's text")
        return text


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"messages": [
        {"text": "@SkyLarkAir flight cancelled, stuck at the gate with 2 kids", "message_id": "tw-1",
         "channel": "twitter"}]}]})
    messages: Annotated[list[MessageIn], Field(min_length=1, description="one message is a batch of one")]


class RouteOut(BaseModel):
    action: str
    team: str | None
    rule: str


class SimilarExample(BaseModel):
    message_id: str
    text: str
    label: str
    similarity: float


class Explanation(BaseModel):
    summary: str
    head: str
    terms: list[str]
    topics: list[str]
    similar: list[SimilarExample]


class ScoreResult(BaseModel):
    message_id: str | None
    actionable: bool
    actionable_prob: float
    priority_tier: int | None
    tier_probs: dict[str, float] | None
    crisis_risk: float
    crisis: bool
    route: RouteOut
    explanation: Explanation
    model_version: str


class ModelRef(BaseModel):
    name: str
    version: str


class ScoreResponse(BaseModel):
    model: ModelRef
    results: list[ScoreResult]


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str
    run_id: str | None
    trained_at: str | None
    loaded_at: str
    taxonomy_version: str
    thresholds: dict[str, float]
    metrics: dict[str, dict[str, float]]


class ReloadResult(BaseModel):
    model: ModelRef
    model_changed: bool
    routing_map: str
