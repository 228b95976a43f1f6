"""An inbound message as callers send it (the API, batch files): validated once, the same way everywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

from triage_ml.data.schema import MessageText
from triage_ml.scoring import Message
from triage_ml.settings import get_settings

Id = Annotated[StrictStr, Field(max_length=256, pattern=r"^[^\x00]*$", description="no NUL characters")]
FIELDS = ("message_id", "channel", "brand", "author", "conversation_id", "created_at", "is_private")


class MessageIn(BaseModel):
    """One inbound message. Only ``text`` is required; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
    text: Annotated[MessageText, Field(description="the message as received")]
    message_id: Id | None = None
    channel: Id | None = None
    brand: Id | None = None
    author: Id | None = None
    conversation_id: Id | None = None
    created_at: datetime | None = None
    is_private: StrictBool | None = None

    @field_validator("created_at")
    @classmethod
    def _not_ahead(cls, created_at: datetime | None) -> datetime | None:
        """A time later than this server's clock plus ``max_clock_skew_seconds`` is refused: it would run
        the spike watcher's window ahead of the traffic."""
        if created_at is None:
            return None
        skew, now = get_settings().max_clock_skew_seconds, datetime.now(UTC)
        ahead = (created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)) - now
        if ahead.total_seconds() > skew:
            raise ValueError(f"{created_at.isoformat()} is {ahead.total_seconds():,.0f} s ahead of this server's "
                             f"clock ({now.isoformat(timespec='seconds')}); send when the message was posted (a time "
                             f"without an offset is read as UTC); TRIAGE_MAX_CLOCK_SKEW_SECONDS={skew:g} allows more")
        return created_at

    def to_message(self) -> Message:
        return Message(**self.model_dump(exclude={"created_at"}),
                       created_at=self.created_at.isoformat() if self.created_at else None)
