"""Stable membership by hash: a key's place in [0, 1) depends on the key alone, never on the file order, the
other rows or the run. The gold set (``pipeline.holdout``) and the real-test split (``data.real``) use it."""

from __future__ import annotations

import hashlib


def stable_bucket(key: str) -> float:
    """``key``'s place in [0, 1): uniform over keys, the same on every machine and in every run."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:8], "big") / 2**64
