"""The labeled-message contract: one table shape for seed data, imports, agent labels and exports.

``text`` is required. Each head's label is optional per row (partial labels are normal): an unknown
label is blank in a file and ``<NA>`` in the validated frame. The taxonomy's rules fill what they imply
(a crisis is actionable and tier 1; noise has no tier and is no crisis; a reason code implies its tier)
and reject what they forbid (a tier on noise, crisis without actionable, ...).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from triage_ml.data.io import read_table
from triage_ml.errors import DataValidationError
from triage_ml.messages import length_problem
from triage_ml.taxonomy import (
    ACTIONABLE_REASONS,
    CONFLICTS,
    CRISIS_KINDS,
    HEADS,
    NOISE_REASONS,
    REASONS,
    SENTIMENTS,
    UNKNOWN_WORDS,
    Conflict,
    parse_yes_no,
    shown,
    tier_for_reason,
)

LABEL_COLUMNS = (*HEADS, "reason", "crisis_kind")
PROVENANCE_COLUMNS = ("message_id", "channel", "is_private", "brand", "industry", "author", "created_at",
                      "conversation_id", "source")
_NONE_TIER = {"none", "null"}


class _Problems:
    """Collects (row, column, message) and raises one error naming the first, with a count of the rest."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[tuple[int, str, str]] = []

    def add(self, rows: pd.Index, column: str, message: Callable[[int], str]) -> None:
        for row in rows:
            self.items.append((int(row), column, message(int(row))))

    def raise_if_any(self) -> None:
        if self.items:
            self.items.sort()
            row, column, message = self.items[0]
            raise DataValidationError(message, source=self.source, row=row + 1, column=column,
                                      more=len(self.items) - 1)


def _is_missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _as_text(series: pd.Series) -> pd.Series:
    return series.map(lambda v: "" if _is_missing(v) else str(v).strip())


def _parse_bool(df: pd.DataFrame, column: str, problems: _Problems) -> pd.Series:
    raw = _as_text(df[column]) if column in df else pd.Series("", index=df.index)
    parsed: list[bool | None] = []
    for row, value in raw.items():
        try:
            parsed.append(parse_yes_no(value))
        except ValueError as exc:
            problems.add(pd.Index([row]), column, lambda r, why=str(exc): why)
            parsed.append(None)
    return pd.Series(parsed, index=df.index, dtype="boolean")


def _parse_tier(df: pd.DataFrame, problems: _Problems) -> tuple[pd.Series, pd.Series]:
    """Returns (tier as nullable Int64, mask of rows explicitly marked ``none``)."""
    raw = _as_text(df["priority_tier"]).str.lower() if "priority_tier" in df else pd.Series("", index=df.index)
    raw = raw.str.removeprefix("tier").str.strip().replace({"1.0": "1", "2.0": "2"})
    out = pd.Series(pd.NA, index=df.index, dtype="Int64")
    out[raw == "1"] = 1
    out[raw == "2"] = 2
    none = raw.isin(_NONE_TIER)
    bad = raw[~raw.isin({"1", "2"} | _NONE_TIER | UNKNOWN_WORDS)]
    problems.add(bad.index, "priority_tier",
                 lambda r: f"'{df['priority_tier'][r]}' is not a tier; use 1, 2, none (noise) or blank (unknown)")
    return out, none


def validate_labeled(frame: pd.DataFrame, source: str = "<table>") -> pd.DataFrame:
    """Validate and normalise a labeled-message table; raises DataValidationError naming row and column.

    Returns a new frame: ``message_id`` (str, unique), ``text`` (str), ``actionable`` / ``crisis``
    (nullable boolean), ``priority_tier`` (nullable Int64), ``reason`` (str or <NA>), provenance columns
    as strings where present, and any other source columns unchanged.
    """
    if frame.empty:
        raise DataValidationError("no rows; a labeled table needs at least one message", source=source)
    if "text" not in frame.columns:
        raise DataValidationError(
            f"no 'text' column (columns found: {', '.join(map(str, frame.columns[:8]))}); "
            "the message text must be in a column named 'text'", source=source)
    df = frame.reset_index(drop=True).copy()
    problems = _Problems(source)

    text = df["text"].map(lambda v: v if isinstance(v, str) else ("" if _is_missing(v) else str(v)))
    empty = text[text.str.strip() == ""]
    problems.add(empty.index, "text", lambda r: "empty text; every message needs its text (drop the row if none)")
    long = text[text.str.len().map(length_problem).notna()]
    problems.add(long.index, "text", lambda r: str(length_problem(len(text[r]))))

    if "message_id" in df:
        ids = _as_text(df["message_id"])
        missing = ids[ids == ""]
        problems.add(missing.index, "message_id", lambda r: "empty message_id; give every row an id or drop the column")
        dup = ids[(ids != "") & ids.duplicated(keep="first")]
        problems.add(dup.index, "message_id", lambda r: f"duplicate message_id '{ids[r]}'; ids must be unique")
    else:
        ids = pd.Series([f"row-{i + 1:06d}" for i in range(len(df))], index=df.index)

    actionable = _parse_bool(df, "actionable", problems)
    crisis = _parse_bool(df, "crisis", problems)
    tier, tier_none = _parse_tier(df, problems)
    reason = _as_text(df["reason"]).str.lower() if "reason" in df else pd.Series("", index=df.index)
    bad_reason = reason[(reason != "") & ~reason.isin(REASONS)]
    problems.add(bad_reason.index, "reason",
                 lambda r: f"unknown reason code '{reason[r]}'; use one of {', '.join(sorted(REASONS))}")
    kind = _as_text(df["crisis_kind"]).str.lower() if "crisis_kind" in df else pd.Series("", index=df.index)
    bad_kind = kind[(kind != "") & ~kind.isin(CRISIS_KINDS)]
    problems.add(bad_kind.index, "crisis_kind",
                 lambda r: f"unknown crisis kind '{kind[r]}'; use one of {', '.join(CRISIS_KINDS)} or leave it blank")
    sentiment = _as_text(df["sentiment"]).str.lower() if "sentiment" in df else None
    if sentiment is not None:
        bad_sentiment = sentiment[(sentiment != "") & ~sentiment.isin(SENTIMENTS)]
        problems.add(bad_sentiment.index, "sentiment", lambda r: f"unknown sentiment '{sentiment[r]}'; use one of "
                     f"{', '.join(SENTIMENTS)} or leave it blank")
    problems.raise_if_any()

    _check_and_imply(actionable, tier, tier_none, crisis, reason, problems)
    kinded_not_crisis = (kind != "") & (crisis == False).fillna(False)  # noqa: E712
    problems.add(kinded_not_crisis[kinded_not_crisis].index, "crisis_kind",
                 lambda r: "a crisis kind on a message that is not a crisis; clear crisis_kind or set crisis true")
    problems.raise_if_any()

    out = df.drop(columns=[c for c in LABEL_COLUMNS if c in df.columns])
    out["message_id"] = ids.values
    out["text"] = text.values
    out["actionable"] = actionable.values
    out["priority_tier"] = tier.values
    out["crisis"] = crisis.values
    out["reason"] = reason.replace("", pd.NA).astype("string").values
    out["crisis_kind"] = kind.replace("", pd.NA).astype("string").values
    if sentiment is not None:
        out["sentiment"] = sentiment.replace("", pd.NA).astype("string").values
    for column in PROVENANCE_COLUMNS:
        if column in out and column != "message_id":
            out[column] = _as_text(out[column]).astype("string")
    first = ["message_id", "text", *LABEL_COLUMNS]
    return out[first + [c for c in out.columns if c not in first]]


def _breaking(rule: Conflict, heads: dict[str, pd.Series]) -> pd.Series:
    """Rows whose labels break ``rule`` (the frame form of ``Conflict.holds``)."""
    mine, theirs = heads[rule.head], heads[rule.other]
    return mine.notna() & (True if rule.value is None else mine == rule.value) & (theirs == rule.other_value)


def _check_and_imply(actionable: pd.Series, tier: pd.Series, tier_none: pd.Series, crisis: pd.Series,
                     reason: pd.Series, problems: _Problems) -> None:
    """Apply the taxonomy's rules in place: reject contradictions, fill what the known labels imply."""
    reason_tier = reason.map(lambda r: tier_for_reason(r) if r else None)
    is_noise_reason = reason.isin(NOISE_REASONS)
    is_act_reason = reason.isin(ACTIONABLE_REASONS)

    heads = {"actionable": actionable.astype("Int64"), "priority_tier": tier, "crisis": crisis.astype("Int64")}
    rules = [(_breaking(rule, heads), rule.field,
              f"{rule.head} is {'set' if rule.value is None else shown(rule.head, rule.value)} but {rule.other} "
              f"is {shown(rule.other, rule.other_value)}; {rule.rule}") for rule in CONFLICTS]
    rules += [
        (tier_none & (actionable == True), "priority_tier",  # noqa: E712
         "tier is none but actionable is true; an actionable message has tier 1 or 2"),
        (is_noise_reason & ((actionable == True) | tier.notna()), "reason",  # noqa: E712
         "a noise reason code on an actionable message; use an actionable reason or mark it noise"),
        (is_act_reason & ((actionable == False) | tier_none), "reason",  # noqa: E712
         "an actionable reason code on a noise message; use a noise reason or mark it actionable"),
        (tier.notna() & reason_tier.notna() & (tier != reason_tier.astype("Int64")), "reason",
         "reason code and priority_tier disagree (question/complaint/urgent_need/crisis are tier 1; "
         "praise/mention/industry are tier 2)"),
        ((reason == "crisis") & (crisis == False), "crisis",  # noqa: E712
         "reason is crisis but crisis is false"),
    ]
    for mask, column, message in rules:
        rows = mask.fillna(False)
        problems.add(rows[rows].index, column, lambda r, m=message: m)
    if problems.items:
        return

    # Implications, each only filling unknowns.
    crisis_reason = reason == "crisis"
    crisis[crisis.isna() & crisis_reason] = True
    actionable[actionable.isna() & ((crisis == True) | tier.notna() | is_act_reason).fillna(False)] = True  # noqa: E712
    actionable[actionable.isna() & (tier_none | is_noise_reason)] = False
    fill_tier = tier.isna() & (actionable == True).fillna(False) & reason_tier.notna()  # noqa: E712
    tier[fill_tier] = reason_tier[fill_tier].astype("Int64")
    tier[tier.isna() & (crisis == True).fillna(False)] = 1  # noqa: E712
    crisis[crisis.isna() & (actionable == False).fillna(False)] = False  # noqa: E712


def load_labeled(path: str | Path) -> pd.DataFrame:
    """Read and validate one labeled file (CSV, JSONL or Parquet)."""
    return validate_labeled(read_table(path), source=str(path))


def dataset_hash(df: pd.DataFrame) -> str:
    """SHA-256 of what training sees: ids, texts and labels in id order, independent of file format."""
    cols = ["message_id", "text", *HEADS, "reason"]
    # crisis_kind and sentiment join the hash only where a row has one, so data without them hashes as it did
    extra = [c for c in ("conversation_id",) if c in df]
    extra += [c for c in ("crisis_kind", "sentiment") if c in df and df[c].notna().any()]
    canon = df[cols + extra].sort_values("message_id").astype("string").fillna("<NA>")
    digest = hashlib.sha256()
    for row in canon.itertuples(index=False):
        digest.update("\x1f".join(row).encode("utf-8"))
        digest.update(b"\x1e")
    return digest.hexdigest()
