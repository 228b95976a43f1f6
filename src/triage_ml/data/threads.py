"""Labeled threads (``data/threads/messages.csv``): whole conversations, one row per turn, customer turns labeled
in context. What the thread-aware head (``model.thread_head``) trains and is judged on.

Columns: ``thread_id``, ``turn`` (1, 2, ...), ``from`` (customer or brand), ``text``, the provenance columns of
the labeled-message contract (``created_at``, ``channel``, ``is_private``, ``brand``, ``industry``, ``author``)
and, on customer turns, its labels (``data.schema``). Brand turns carry no labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pandas as pd

from triage_ml.data.agreement import compare
from triage_ml.data.io import read_table
from triage_ml.data.schema import LABEL_COLUMNS, validate_labeled
from triage_ml.errors import DataValidationError
from triage_ml.thread import SPEAKERS

THREADS: Final = Path("data/threads/messages.csv")  # relative to the repository, like the real data
SECOND_PASS: Final = Path("data/threads/second_pass.csv")  # a blind second pass over the follow-ups
REQUIRED: Final = ("thread_id", "turn", "from", "text")


def turn_ids(thread_id: pd.Series, turn: pd.Series) -> pd.Series:
    """Each turn's ``message_id``: ``{thread_id}-{turn}`` (what the second pass names too)."""
    return thread_id.astype(str) + "-" + turn.astype(str)


def load_threads(path: str | Path = THREADS) -> pd.DataFrame:
    """Every turn, validated, in thread and turn order: ``message_id`` (``{thread_id}-{turn}``), ``thread_id``,
    ``turn`` (int), ``from``, ``text``, and the labels of customer turns (``validate_labeled``'s types; <NA> on
    brand turns). Raises DataValidationError naming the row and the column."""
    source = str(path)
    raw = read_table(path)
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise DataValidationError(f"missing column(s) {', '.join(missing)}; a thread file needs "
                                  f"{', '.join(REQUIRED)}", source=source)
    raw = raw.reset_index(drop=True)
    turn = pd.to_numeric(raw["turn"], errors="coerce")
    for row in raw.index:
        if raw.at[row, "from"] not in SPEAKERS:
            raise DataValidationError(f"{raw.at[row, 'from']!r} is not a speaker; use customer or brand",
                                      source=source, row=row + 1, column="from")
        if pd.isna(turn[row]) or turn[row] < 1 or turn[row] != int(turn[row]):
            raise DataValidationError(f"{raw.at[row, 'turn']!r} is not a turn number; use 1, 2, ...",
                                      source=source, row=row + 1, column="turn")
    number = turn.astype(int)
    raw = raw.assign(turn=number, message_id=turn_ids(raw["thread_id"], number),
                     conversation_id=raw["thread_id"].astype(str))
    brand = raw["from"] == "brand"
    labeled = [c for c in LABEL_COLUMNS if c in raw.columns]
    if labeled and raw.loc[brand, labeled].replace("", pd.NA).notna().any().any():
        row = int(raw.index[brand & raw[labeled].replace("", pd.NA).notna().any(axis=1)][0])
        raise DataValidationError("a brand's turn carries labels; label customer turns only",
                                  source=source, row=row + 1, column=labeled[0])
    customers = validate_labeled(raw[~brand], source=source)
    out = pd.concat([customers, raw[brand].drop(columns=labeled)], ignore_index=True)
    out = out.astype({c: customers[c].dtype for c in labeled if c in customers})
    return out.sort_values(["thread_id", "turn"], kind="stable").reset_index(drop=True)


def follow_ups(threads: pd.DataFrame) -> pd.DataFrame:
    """The customer turns after the first of each thread, with the turn each answers (the one before it):
    ``answered_text``, ``answered_from``; the labels and the other columns as ``load_threads`` gave them."""
    previous = threads.groupby("thread_id", sort=False)
    answered_text = previous["text"].shift(1)
    answered_from = previous["from"].shift(1)
    rows = (threads["from"] == "customer") & answered_text.notna()
    return threads[rows].assign(answered_text=answered_text[rows], answered_from=answered_from[rows]).reset_index(
        drop=True)


def second_pass_agreement(threads: str | Path = THREADS, second: str | Path = SECOND_PASS) -> dict[str, Any]:
    """The blind second pass against the file's labels on the follow-ups (``data.agreement.compare``)."""
    def as_text(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.set_index("message_id")[list(LABEL_COLUMNS)].astype(str).apply(lambda c: c.str.lower())

    first = read_table(threads).astype(str)
    first["message_id"] = turn_ids(first["thread_id"], first["turn"])
    first = first[first["message_id"].isin(set(read_table(second)["message_id"].astype(str)))]
    return compare(as_text(first), as_text(read_table(second).astype(str)))
