"""Importers: public data sets mapped to the labeled-message contract, claiming only what they say."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from triage_ml.data.io import read_table
from triage_ml.data.schema import validate_labeled
from triage_ml.errors import DataValidationError

XCI_COLUMNS = ("id", "tweet", "label", "domain", "Severity")


def import_xci(path: str | Path) -> pd.DataFrame:
    """The complaints data (Preotiuc-Pietro et al. 2019; severity: Jin & Aletras 2021).

    Mapping: random tweets and replies (``domain`` random_*) -> noise; complaints (``label`` 1) ->
    actionable, tier 1, reason complaint; brand-directed non-complaints -> every label unknown (they may
    be questions or praise). Crisis is never claimed. The source's own columns are kept as ``xci_*``
    (complaint 0/1, severity 0-4, domain, sentiment, emotion) for benchmarks.
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
    is_complaint = complaint == "1"
    is_random = raw["domain"].astype(str).str.startswith("random")
    out = pd.DataFrame({
        "message_id": "xci-" + raw["id"].astype(str),
        "text": raw["tweet"],
        "actionable": pd.Series(pd.NA, index=raw.index, dtype="string").mask(is_complaint, "true")
        .mask(is_random, "false"),
        "priority_tier": pd.Series(pd.NA, index=raw.index, dtype="string").mask(is_complaint, "1")
        .mask(is_random, "none"),
        "crisis": pd.NA,
        "reason": pd.Series(pd.NA, index=raw.index, dtype="string").mask(is_complaint, "complaint"),
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


IMPORTERS: dict[str, Callable[[str | Path], pd.DataFrame]] = {"xci": import_xci}
