"""Agreement between independent annotation passes over the real tweets (data/README.md).

The first pass labeled every tweet; a second annotator, blind to it, labeled a random sample. The label file
holds the final labels, after adjudication; ``xci_label_changes.csv`` keeps the first pass's labels wherever
the final ones differ, so the first pass is rebuilt exactly and compared with the second.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score

from triage_ml.data.io import read_table
from triage_ml.data.real import REAL_LABELS, read_label_file
from triage_ml.data.schema import LABEL_COLUMNS

SECOND_PASS = Path("data/real/xci_labels_second_pass.csv")
CHANGES = Path("data/real/xci_label_changes.csv")
LABELS = LABEL_COLUMNS


def kappa(a: list, b: list) -> float | None:
    """Cohen's kappa of two raters' answers; None when it is undefined (both used one class throughout)."""
    if not a:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = cohen_kappa_score(a, b)
    return None if np.isnan(value) else round(float(value), 4)


def first_pass(labels: str | Path = REAL_LABELS, changes: str | Path = CHANGES) -> pd.DataFrame:
    """The first annotation pass, indexed by tweet id: the final labels with every change undone."""
    final = read_label_file(labels).set_index("tweet_id")[list(LABELS)].copy()
    undo = read_table(changes)
    undo["tweet_id"] = undo["tweet_id"].astype(str).str.strip()
    for label in LABELS:
        final.loc[undo["tweet_id"].to_numpy(), label] = undo[f"first_{label}"].to_numpy()
    return final


def pass_agreement(labels: str | Path = REAL_LABELS, second: str | Path = SECOND_PASS,
                   changes: str | Path = CHANGES) -> dict[str, Any]:
    """Per label: tweets compared, share of identical answers and Cohen's kappa between the first pass and
    the second. ``priority_tier`` counts noise as a third value (none); ``crisis_kind`` is compared on the
    tweets both passes called a crisis."""
    one = first_pass(labels, changes)
    two = read_label_file(second).set_index("tweet_id")[list(LABELS)]
    compared = compare(one, two)
    return {"tweets": compared.pop("items"), **compared}


def compare(one: pd.DataFrame, two: pd.DataFrame) -> dict[str, Any]:
    """Two passes' labels (LABELS as file text: ``true``, ``1``, ``none``, ...), each indexed by item id, compared
    on the items both labeled: ``items`` and, per label, ``n``, ``agreement`` and ``kappa``."""
    ids = [i for i in two.index if i in one.index]
    out: dict[str, Any] = {"items": len(ids)}
    for label in LABELS:
        rows = ids
        if label == "crisis_kind":
            rows = [i for i in ids if one.at[i, "crisis"] == "true" and two.at[i, "crisis"] == "true"]
        a, b = one.loc[rows, label].tolist(), two.loc[rows, label].tolist()
        same = sum(x == y for x, y in zip(a, b, strict=True))
        out[label] = {"n": len(rows), "agreement": round(same / len(rows), 4) if rows else None,
                      "kappa": kappa(a, b)}
    return out
