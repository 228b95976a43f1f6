"""An inbound message: ``Message`` is the one definition of its fields. What callers send is validated once,
the same way everywhere (``MessageIn``: the API, batch files), and every list of message fields (the store's
columns, exports, review tasks, Spark, the pyfunc signature) is derived from ``Message``."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, get_type_hints

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    create_model,
    model_validator,
)

from triage_ml.settings import get_settings
from triage_ml.thread import Thread, Turn, thread_of
from triage_ml.times import as_utc

MAX_ID_CHARS: Final = 256


@dataclass(frozen=True, slots=True)
class Message:
    """One message to score: its text, what the inbox knows about it, and (``thread``) the turns before it as
    the inbox has them: scoring input only, never stored."""

    text: str
    message_id: str | None = None
    channel: str | None = None
    brand: str | None = None
    author: str | None = None
    conversation_id: str | None = None
    is_private: bool | None = None
    created_at: datetime | None = None
    thread: Thread | None = None


# the message's own fields, what a caller may send beside the text and the thread (which is never stored)
FIELDS: Final = tuple(f.name for f in fields(Message) if f.name not in ("text", "thread"))
CONTEXT_FIELDS: Final = tuple(f for f in FIELDS if f != "message_id")  # what the store keeps beside id and text
STRING_FIELDS: Final = tuple(f for f, t in get_type_hints(Message).items()
                           if t == str | None and f != "message_id")  # the context fields that are strings


def message_record(message_id: str, text: str, source: Any) -> dict[str, Any]:
    """A message as one row of a table (exports, review candidates, tasks): message_id, text and the context
    fields read from ``source`` (a Message or a stored row), ``created_at`` in ISO 8601."""
    record: dict[str, Any] = {"message_id": message_id, "text": text}
    for name in CONTEXT_FIELDS:
        value = getattr(source, name)
        record[name] = value.isoformat() if isinstance(value, datetime) else value
    return record


# -- validation --------------------------------------------------------------------------------------------
def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("text is empty or whitespace only; send the message's text")
    return text


def length_problem(length: int) -> str | None:
    """What is wrong with a text of ``length`` characters, if anything (the limit is a setting)."""
    limit = get_settings().max_text_chars
    if length > limit:
        return f"text is {length:,} characters; the limit is {limit:,} (TRIAGE_MAX_TEXT_CHARS)"
    return None


def _within_limit(text: str) -> str:
    if problem := length_problem(len(text)):
        raise ValueError(problem)
    return text


def _not_ahead(created_at: datetime) -> datetime:
    """A time later than this server's clock plus ``max_clock_skew_seconds`` is refused: it would run the spike
    watcher's window ahead of the traffic."""
    skew, now = get_settings().max_clock_skew_seconds, datetime.now(UTC)
    try:
        ahead = (as_utc(created_at) - now).total_seconds()
    except OverflowError:  # beyond the year 9999 once in UTC
        ahead = math.inf
    if ahead > skew:
        raise ValueError(f"{created_at.isoformat()} is {ahead:,.0f} s ahead of this server's "
                         f"clock ({now.isoformat(timespec='seconds')}); send when the message was posted (a time "
                         f"without an offset is read as UTC); TRIAGE_MAX_CLOCK_SKEW_SECONDS={skew:g} allows more")
    return created_at


# A message's text wherever a caller sends one (scoring, decisions, flags, training files): at most
# TRIAGE_MAX_TEXT_CHARS characters, not blank ("" too).
MessageText = Annotated[StrictStr, AfterValidator(_within_limit), AfterValidator(_not_blank)]
# Identifiers are stored as text columns; PostgreSQL's text cannot hold NUL, so NUL is refused up front.
Id = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[^\x00]+$",
                                description="no NUL characters")]
_VALIDATED: Final[dict[Any, Any]] = {str | None: Id | None, bool | None: StrictBool | None,
                                     datetime | None: Annotated[datetime, AfterValidator(_not_ahead)] | None}


def message_fields(*, text_required: bool, id_required: bool) -> dict[str, Any]:
    """``Message``'s fields as pydantic field definitions with their checks, for a model that carries a message
    (``MessageIn``, an agent's ``Decision``)."""
    hints = get_type_hints(Message)
    out: dict[str, Any] = {"text": (MessageText if text_required else MessageText | None,
                                    Field(... if text_required else None, description="the message as received"))}
    for name in FIELDS:
        kind = Id if name == "message_id" and id_required else _VALIDATED[hints[name]]
        out[name] = (kind, ... if kind is Id else None)
    return out


# -- the thread a caller may send with a message (``thread.py``) -------------------------------------------
Speaker = Literal["customer", "brand"]


class TurnIn(BaseModel):
    """An earlier turn of the message's conversation, as the calling inbox has it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    text: MessageText
    from_: Speaker = Field(alias="from", description="who wrote the turn: customer or brand")
    created_at: datetime | None = None

    def to_turn(self) -> Turn:
        return Turn(self.text, self.from_, self.created_at)


class ReplyIn(BaseModel):
    """The turn the message answers: its text (and who wrote it), or the id of a message already scored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    message_id: Id | None = None
    text: MessageText | None = None
    from_: Speaker | None = Field(None, alias="from", description="who wrote it: customer or brand")

    @model_validator(mode="after")
    def _text_or_id(self) -> ReplyIn:
        if self.message_id is None and self.text is None:
            raise ValueError("in_reply_to needs the answered turn's text (and 'from'), or its message_id")
        return self


def _turns_within_limit(turns: list[TurnIn]) -> list[TurnIn]:
    limit = get_settings().max_thread_turns
    if len(turns) > limit:
        raise ValueError(f"{len(turns)} turns; the limit is {limit} (TRIAGE_MAX_THREAD_TURNS): send the latest "
                         f"{limit}")
    return turns


THREAD_INPUT: Final[dict[str, Any]] = {
    "in_reply_to": (ReplyIn | None, Field(None, description="the turn this message answers")),
    "thread": (Annotated[list[TurnIn], AfterValidator(_turns_within_limit)] | None,
               Field(None, description="earlier turns of the conversation, oldest first (at most "
                     "TRIAGE_MAX_THREAD_TURNS); the last is the answered turn unless in_reply_to says otherwise")),
}


class _MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def to_message(self) -> Message:
        own = {name: getattr(self, name) for name in ("text", *FIELDS)}
        reply: ReplyIn | None = getattr(self, "in_reply_to", None)
        turns = [t.to_turn() for t in getattr(self, "thread", None) or []]
        thread = thread_of(turns, reply.text, reply.from_, reply.message_id) if reply else thread_of(turns)
        return Message(**own, thread=thread)


MessageIn = create_model("MessageIn", __base__=_MessageIn, __doc__="One inbound message. Only ``text`` is "
                         "required; unknown fields are refused.", **message_fields(text_required=True,
                                                                                  id_required=False),
                         **THREAD_INPUT)
