"""Importers: public data sets in the labeled-message contract, claiming no label the team did not give."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from triage_ml.data.io import read_table
from triage_ml.data.schema import validate_labeled
from triage_ml.errors import DataValidationError

XCI_COLUMNS = ("id", "tweet", "label", "domain", "Severity")


def import_xci(path: str | Path) -> pd.DataFrame:
    """The public complaints data's tweets (Preotiuc-Pietro et al. 2019; severity: Jin & Aletras 2021) as
    unlabeled messages, with the source's own columns kept as ``xci_*`` (complaint 0/1, severity 0-4,
    domain, sentiment, emotion) for benchmarks.

    No taxonomy label is taken from the source: its complaint flag is not our taxonomy, and a partial
    mapping from it (complaints -> tier 1, random tweets -> noise) taught the tier head that a real tweet
    is tier 1 (data/README.md). The team's labels come from ``data.real.load_real``.
    """
    raw = read_table(path)
    missing = [c for c in XCI_COLUMNS if c not in raw.columns]
    if missing:
        raise DataValidationError(f"missing column(s) {', '.join(missing)}; is this xci_complaints.csv?",
                                  source=str(path))
    complaint = raw["label"].astype(str).str.strip()
    bad = complaint[~complaint.isin({"0", "1"})]
    if len(bad):
        raise DataValidationError(f"label '{bad.iloc[0]}' is not 0 or 1", source=str(path),
                                  row=int(bad.index[0]) + 1, column="label")
    out = pd.DataFrame({
        "message_id": "xci-" + raw["id"].astype(str).str.strip(),
        "text": raw["tweet"],
        "channel": "twitter",
        "source": "import:xci",
        "xci_complaint": complaint.astype(int),
        "xci_severity": pd.to_numeric(raw["Severity"], errors="coerce").astype("Int64"),
        "xci_domain": raw["domain"],
    })
    for column in ("sentiment", "emotion"):
        if column in raw:
            out[f"xci_{column}"] = raw[column]
    return validate_labeled(out, source=str(path))


def import_xci_labeled(path: str | Path) -> pd.DataFrame:
    """The tweets of ``path`` joined to the team's labels (``data/real/xci_labels.csv``), with each row's
    ``real_split``; training drops the real-test rows whatever file they arrive in."""
    from triage_ml.data.real import REAL_LABELS, load_real

    return load_real(path, REAL_LABELS)


IMPORTERS: dict[str, Callable[[str | Path], pd.DataFrame]] = {"xci": import_xci_labeled}
