"""The feature frame every head consumes: a ``text`` column plus one column per embedding dimension."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

EMBEDDING_PREFIX = "emb_"


def embedding_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if isinstance(c, str) and c.startswith(EMBEDDING_PREFIX)]


def feature_frame(texts: Sequence[str], embeddings: np.ndarray) -> pd.DataFrame:
    """(n,) texts and (n, dim) embeddings -> DataFrame with ``text`` and ``emb_0..emb_{dim-1}``."""
    if len(texts) != len(embeddings):
        raise ValueError(f"{len(texts)} texts but {len(embeddings)} embeddings")
    emb = pd.DataFrame(np.asarray(embeddings, dtype=np.float32),
                       columns=[f"{EMBEDDING_PREFIX}{i}" for i in range(embeddings.shape[1])])
    emb.insert(0, "text", list(texts))
    return emb
