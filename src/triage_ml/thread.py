"""A message's thread as the calling inbox has it: the turn the message answers and earlier turns.

A reply inside a support exchange ("nope", "done, ref 1-3001408092") means little alone; the thread-aware head
(``model.thread_head``) judges it with the turn it answers. The thread is scoring input only: it is never stored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

SPEAKERS: Final = ("customer", "brand")
# the columns a table of messages (score-batch, Spark, the pyfunc) may carry for the turn each row answers
REPLY_COLUMNS: Final = ("in_reply_to_text", "in_reply_to_from")


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier turn: its text and who wrote it (``customer`` or ``brand``; None when the caller did not say)."""

    text: str
    speaker: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Thread:
    """Earlier turns, oldest first; the last is the turn the message answers. ``reply_to_id``: the id of the
    answered message when the caller sent only its id (the service looks its text up in the label store).
    ``notes``: what the caller sent that scoring could not use, and why (returned with the result)."""

    turns: tuple[Turn, ...] = ()
    reply_to_id: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def answered(self) -> Turn | None:
        """The turn the message answers, when known."""
        return self.turns[-1] if self.turns else None

    def resolved(self, text: str | None) -> Thread:
        """This thread once ``reply_to_id`` is looked up: ``text`` (a stored inbound message, so a customer's) is
        the answered turn; None leaves the turns as they are, with a note."""
        if self.reply_to_id is None:
            return self
        if text is None:
            return replace(self, reply_to_id=None, notes=(*self.notes, (
                f"in_reply_to.message_id {self.reply_to_id!r} is not in the label store: scored without the turn it "
                "answers; send in_reply_to.text")))
        return replace(self, turns=(*self.turns, Turn(text, "customer")), reply_to_id=None)

    def to_dict(self) -> dict[str, Any]:
        """What the result says of the thread: turns used, who wrote the answered one, and notes."""
        answered = self.answered
        return {"turns": len(self.turns), "answered_from": answered.speaker if answered else None,
                "notes": list(self.notes)}


def reply_turn(row: Mapping[str, Any]) -> Turn | None:
    """The turn a table row answers, from its REPLY_COLUMNS (the pyfunc's input, Spark's rows): None without a
    text; a speaker other than customer or brand is left unsaid. Missing, NaN and empty cells count as absent."""
    def cell(column: str) -> str | None:
        value = row.get(column)
        return None if value is None or (isinstance(value, float) and math.isnan(value)) or value == "" else str(value)

    text, speaker = (cell(c) for c in REPLY_COLUMNS)
    return None if text is None else Turn(text, speaker if speaker in SPEAKERS else None)


def thread_of(turns: list[Turn], reply_to_text: str | None = None, reply_to_from: str | None = None,
              reply_to_id: str | None = None) -> Thread | None:
    """The thread a caller sent: ``turns`` (earlier turns, oldest first) and the answered turn
    (``in_reply_to``) by text or by id. None when the caller sent neither."""
    turns = list(turns)
    if reply_to_text is not None:
        answered = Turn(reply_to_text, reply_to_from)
        if not turns or turns[-1].text != reply_to_text:
            turns.append(answered)
        elif reply_to_from and turns[-1].speaker is None:
            turns[-1] = answered
        reply_to_id = None
    if not turns and reply_to_id is None:
        return None
    return Thread(tuple(turns), reply_to_id=reply_to_id)
