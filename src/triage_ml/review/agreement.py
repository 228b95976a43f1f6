"""``triage-ml review stats``: how often leads agree, per head (Cohen's kappa), and where reviews stand.

Label Studio's community edition has no agreement statistics. Where two or more leads annotated the same
task, each pair of leads gives one pair of answers per head they both answered (each lead's latest valid
annotation); kappa is computed over all such pairs, and per pair of leads.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any

from sqlalchemy import func, select

from triage_ml.data.agreement import kappa
from triage_ml.store.db import Store
from triage_ml.store.tables import DisputeRow, ReviewAnnotationRow, ReviewQueueRow
from triage_ml.taxonomy import HEADS


def _summary(pairs: list[tuple[int, int]]) -> dict[str, Any]:
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    agree = sum(x == y for x, y in pairs)
    return {"pairs": len(pairs), "agreement": round(agree / len(pairs), 4) if pairs else None, "kappa": kappa(a, b)}


def review_stats(store: Store) -> dict[str, Any]:
    with store.session() as session:
        rows = session.scalars(select(ReviewAnnotationRow).order_by(ReviewAnnotationRow.id)).all()
        disputes = dict(session.execute(select(DisputeRow.state, func.count()).group_by(DisputeRow.state)).all())
        pushed_open = session.scalar(select(func.count()).select_from(DisputeRow).where(
            DisputeRow.state == "open", DisputeRow.review_task_id.is_not(None))) or 0
        resolved_in_ls = sum(1 for d in session.scalars(select(DisputeRow).where(DisputeRow.state == "resolved"))
                             if (d.resolution or {}).get("source") == "label-studio")
        queue = dict(session.execute(select(ReviewQueueRow.state, func.count()).group_by(ReviewQueueRow.state)).all())
    latest: dict[tuple[int, int], dict[str, ReviewAnnotationRow]] = defaultdict(dict)
    for row in rows:
        if row.problem is None:
            latest[(row.review_project, row.review_task_id)][row.lead] = row
    by_head: dict[str, list[tuple[int, int]]] = {h: [] for h in HEADS}
    by_pair: dict[tuple[str, str], dict[str, list[tuple[int, int]]]] = defaultdict(lambda: {h: [] for h in HEADS})
    multi = 0
    for leads in latest.values():
        if len(leads) < 2:
            continue
        multi += 1
        for x, y in combinations(sorted(leads), 2):
            for head in HEADS:
                if head in leads[x].labels and head in leads[y].labels:
                    pair = (int(leads[x].labels[head]), int(leads[y].labels[head]))
                    by_head[head].append(pair)
                    by_pair[(x, y)][head].append(pair)
    return {
        "annotations": len(rows), "invalid_annotations": sum(r.problem is not None for r in rows),
        "tasks_with_two_or_more_leads": multi,
        "heads": {h: _summary(p) for h, p in by_head.items()},
        "lead_pairs": [{"leads": list(pair), **{h: _summary(p) for h, p in heads.items()}}
                       for pair, heads in sorted(by_pair.items())],
        "disputes": {"open": disputes.get("open", 0), "open_in_label_studio": pushed_open,
                     "resolved": disputes.get("resolved", 0), "resolved_in_label_studio": resolved_in_ls},
        "queue": {"open": queue.get("open", 0), "answered": queue.get("answered", 0)},
    }
