"""An inbound message as callers send it (the API, batch files): validated once, the same way everywhere."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

from triage_ml.data.schema import MAX_TEXT_CHARS
from triage_ml.scoring import Message

Id = Annotated[StrictStr, Field(max_length=256, pattern=r"^[^\x00]*$", description="no NUL characters")]
FIELDS = ("message_id", "channel", "brand", "author", "conversation_id", "created_at", "is_private")


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

    def to_message(self) -> Message:
        return Message(**self.model_dump(exclude={"created_at"}),
                       created_at=self.created_at.isoformat() if self.created_at else None)
