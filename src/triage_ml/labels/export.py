"""The training table from the label store: one row per labeled message, each head's best label.

Precedence per head (docs/taxonomy.md): lead > two or more agents who agree > a single agent > seed or
import. Agents who disagree leave the head unknown until a lead decides. If the chosen labels of a
message break the taxonomy (a lead's crisis against an agent's noise), the label of lower rank is
dropped. Only current labels count (a superseded one is kept in the store but not used); the output
is sorted and so the same store state always gives the same table and the same hash.

Files: Parquet and JSONL hold the table exactly and are what code reads back (``train --from-store`` and
``retrain`` read a Parquet export). CSV is for people: a cell that a spreadsheet would run as a formula is
written with a leading ``'`` (``for_people``), so a CSV export is never the exact table.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from triage_ml.data.io import table_format, write_table
from triage_ml.messages import CONTEXT_FIELDS, message_record
from triage_ml.store.db import Store
from triage_ml.store.tables import LabelRow, MessageRow
from triage_ml.taxonomy import CONFLICTS, HEADS

RANK = {"lead": 4, "agents": 3, "agent": 2, "seed": 1, "import": 1}
COLUMNS = ("message_id", "text", *CONTEXT_FIELDS, *HEADS, *(f"{head}_source" for head in HEADS), "label_ids")
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _best(labels: list[LabelRow]) -> tuple[int, str, list[int]] | None:
    """(value, source, label ids) of one head's current labels, by precedence; None if unknown."""
    lead = [lab for lab in labels if lab.source == "lead"]
    if lead:
        top = max(lead, key=lambda lab: lab.id)
        return top.value, "lead", [top.id]
    agents: dict[str, LabelRow] = {}
    for lab in sorted(labels, key=lambda lab: lab.id):
        if lab.source == "agent":
            agents[lab.author or ""] = lab
    if agents:
        values = {lab.value for lab in agents.values()}
        if len(values) > 1:
            return None  # disputed: a lead decides
        ids = sorted(lab.id for lab in agents.values())
        return values.pop(), "agents" if len(agents) > 1 else "agent", ids
    base = [lab for lab in labels if lab.source in ("seed", "import")]
    if base:
        top = max(base, key=lambda lab: lab.id)
        return top.value, top.source, [top.id]
    return None


def _consistent(chosen: dict[str, tuple[int, str, list[int]]]) -> dict[str, tuple[int, str, list[int]]]:
    """Drop the lower-ranked side of each taxonomy conflict (both sides when they rank the same)."""
    def conflict(a: str, b: str) -> None:
        if a in chosen and b in chosen:
            ra, rb = RANK[chosen[a][1]], RANK[chosen[b][1]]
            for head, keep in ((a, ra >= rb), (b, rb >= ra)):
                if not keep or ra == rb:
                    chosen.pop(head)

    for rule in CONFLICTS:
        if rule.holds({head: value for head, (value, _, _) in chosen.items()}):
            conflict(rule.head, rule.other)
    return chosen


def training_table(store: Store) -> pd.DataFrame:
    """The export as a DataFrame (columns COLUMNS), sorted by message_id."""
    with store.session() as session:
        labels = session.scalars(select(LabelRow).where(LabelRow.superseded_by.is_(None), LabelRow.source != "model")
                                 .order_by(LabelRow.id)).all()
        by_message: dict[str, dict[str, list[LabelRow]]] = defaultdict(lambda: defaultdict(list))
        for lab in labels:
            by_message[lab.message_id][lab.head].append(lab)
        messages = {m.id: m for m in session.scalars(select(MessageRow).where(MessageRow.id.in_(list(by_message))))}
    rows = []
    for message_id in sorted(by_message):
        chosen = {}
        for head in HEADS:
            best = _best(by_message[message_id].get(head, []))
            if best is not None:
                chosen[head] = best
        chosen = _consistent(chosen)
        if not chosen:
            continue
        m = messages[message_id]
        actionable = chosen.get("actionable", (None,))[0]
        row = {**message_record(m.id, m.text, m),
               "actionable": None if actionable is None else bool(actionable),
               "priority_tier": "none" if actionable == 0 else chosen.get("priority_tier", (None,))[0],
               "crisis": None if "crisis" not in chosen else bool(chosen["crisis"][0])}
        for head in HEADS:
            row[f"{head}_source"] = chosen[head][1] if head in chosen else None
        row["label_ids"] = json.dumps(sorted({i for c in chosen.values() for i in c[2]}))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def table_hash(table: pd.DataFrame) -> str:
    """SHA-256 of the export's content (every column, row order as exported)."""
    return hashlib.sha256(table.to_json(orient="records", date_format="iso").encode()).hexdigest()


def for_people(table: pd.DataFrame) -> pd.DataFrame:
    """A copy to open in a spreadsheet: each text cell that starts with ``= + - @``, a tab or a CR gets a
    leading ``'`` (OWASP's advice), so it shows as text and never runs as a formula."""
    return table.map(lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v)


def for_files(table: pd.DataFrame) -> pd.DataFrame:
    """The table as every file format holds it: ``priority_tier`` as text (1, 2 or none; blank if unknown)."""
    tier = [v if isinstance(v, str) else None if pd.isna(v) else str(int(v)) for v in table["priority_tier"]]
    return table.assign(priority_tier=pd.Series(tier, index=table.index, dtype=object))


def write_export(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the export in the format ``path`` names: Parquet and JSONL exactly (for code), CSV for people."""
    out = for_files(table)
    if table_format(Path(path)) == "csv":
        out = for_people(out)
    return write_table(out, path)
