"""The real labeled tweets: public texts joined to the team's labels, and the real-test split.

The texts are the public complaints data (``data/public/xci_complaints.csv``, MIT; data/README.md). Every
tweet was labeled by reading it (``data/real/xci_labels.csv``: tweet id, the five labels of
docs/taxonomy.md, a note). The label file is raw data: no code writes it.

**Real-test** is one third of the tweets, chosen by a stable hash of the message id (``xci-<tweet id>``), so
it never changes with the file, the run or the other rows. No model trains on it and nothing is tuned on it:
``pipeline.tracking.load_training_data`` drops real-test rows from any training file, whatever its name.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from triage_ml.data.importers import import_xci
from triage_ml.data.io import read_table
from triage_ml.data.schema import LABEL_COLUMNS, validate_labeled
from triage_ml.data.splits import stable_bucket
from triage_ml.errors import DataValidationError
from triage_ml.taxonomy import HEADS

REAL_TEXTS = Path("data/public/xci_complaints.csv")
REAL_LABELS = Path("data/real/xci_labels.csv")
ID_PREFIX = "xci-"
SOURCE = "real:xci"
TEST_FRACTION = 1 / 3
LABEL_FILE_COLUMNS = ("tweet_id", *HEADS, "crisis_kind", "reason", "note")
Split = Literal["train", "test", "all"]


def is_real(message_ids: Iterable[str]) -> np.ndarray:
    """True for the ids of real tweets (``xci-<tweet id>``), shape (n,)."""
    return np.array([str(m).startswith(ID_PREFIX) for m in message_ids], dtype=bool)


def is_real_test(message_ids: Iterable[str]) -> np.ndarray:
    """True for the real tweets in real-test, shape (n,): a stable third of them, by hash of the id."""
    return np.array([str(m).startswith(ID_PREFIX) and stable_bucket(f"real-test:{m}") < TEST_FRACTION
                     for m in message_ids], dtype=bool)


def read_label_file(path: str | Path = REAL_LABELS) -> pd.DataFrame:
    """The label file as written (strings), checked for its columns and unique tweet ids."""
    raw = read_table(path)
    missing = [c for c in LABEL_FILE_COLUMNS if c not in raw.columns]
    if missing:
        raise DataValidationError(f"missing column(s) {', '.join(missing)}; a real label file has "
                                  f"{', '.join(LABEL_FILE_COLUMNS)}", source=str(path))
    ids = raw["tweet_id"].astype(str).str.strip()
    dup = ids[ids.duplicated()]
    if len(dup):
        raise DataValidationError(f"tweet {dup.iloc[0]} is labeled twice; keep one row per tweet",
                                  source=str(path), row=int(dup.index[0]) + 1, column="tweet_id")
    return raw.assign(tweet_id=ids)


def load_real(texts: str | Path = REAL_TEXTS, labels: str | Path = REAL_LABELS, *,
              split: Split = "all") -> pd.DataFrame:
    """The labeled real tweets in the labeled-message contract, with ``xci_domain`` (the source's domain)
    and ``real_split`` (``train`` / ``test``); ``split`` keeps one part. Every label must name a tweet of
    ``texts``."""
    tweets = import_xci(texts)
    table = read_label_file(labels)
    known = set(tweets["message_id"])
    ids = ID_PREFIX + table["tweet_id"]
    unknown = ids[~ids.isin(known)]
    if len(unknown):
        raise DataValidationError(f"tweet {unknown.iloc[0].removeprefix(ID_PREFIX)} is not in {texts}; labels "
                                  "must name tweets of the texts file", source=str(labels),
                                  row=int(unknown.index[0]) + 1, column="tweet_id")
    labeled = table.drop(columns=["tweet_id"]).assign(message_id=ids.to_numpy())
    unlabeled = tweets.drop(columns=[c for c in LABEL_COLUMNS if c in tweets.columns])
    joined = unlabeled.merge(labeled, on="message_id", how="inner", validate="one_to_one")
    # the source's own sentiment label for every tweet (data/README.md), its mixed case folded: the sentiment
    # head's training rows (real-train) and yardstick (real-test)
    if "xci_sentiment" in joined:
        joined["sentiment"] = joined["xci_sentiment"].astype("string").str.strip().str.lower()
    data = validate_labeled(joined, source=str(labels))
    data["source"] = SOURCE
    data["real_split"] = np.where(is_real_test(data["message_id"]), "test", "train")
    if split != "all":
        data = data[data["real_split"] == split].reset_index(drop=True)
    return data
