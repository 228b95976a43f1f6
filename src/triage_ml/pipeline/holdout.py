"""The gold set: which labeled messages no model is ever trained on.

Membership is decided per conversation by a stable hash of its id, so it does not depend on the file
order, the other rows or the run: the same conversation is gold in every retrain, and every model in the
registry was judged on messages it never saw. A conversation with a lead label is gold at
``lead_fraction`` (most leads' answers still train the model), any other at ``seed_fraction``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from triage_ml.data.splits import stable_bucket
from triage_ml.pipeline.config import HoldoutConfig
from triage_ml.taxonomy import HEADS


def conversation_keys(data: pd.DataFrame) -> pd.Series:
    """Each row's conversation (its own message id when it has none)."""
    groups = data["conversation_id"] if "conversation_id" in data else pd.Series(pd.NA, index=data.index)
    groups = groups.astype("string").fillna("")
    return groups.mask(groups == "", data["message_id"].astype("string"))


def lead_rows(data: pd.DataFrame) -> np.ndarray:
    """Rows where any head's label came from a lead (the label store's export says so per head)."""
    out = np.zeros(len(data), dtype=bool)
    for head in HEADS:
        column = f"{head}_source"
        if column in data:
            out |= (data[column].astype("string") == "lead").fillna(False).to_numpy(dtype=bool)
    return out


def gold_mask(data: pd.DataFrame, config: HoldoutConfig) -> np.ndarray:
    """True for the rows of the gold set, shape (n,)."""
    keys = conversation_keys(data)
    has_lead = pd.Series(lead_rows(data), index=data.index).groupby(keys.to_numpy()).transform("any").to_numpy()
    buckets = np.array([stable_bucket(k) for k in keys])
    return np.where(has_lead, buckets < config.lead_fraction, buckets < config.seed_fraction)
