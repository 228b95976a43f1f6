"""The near-identical burst that the spike watcher's memory bound is measured on (``benchmarks/spikes.py``,
the long run) and checked with (``tests/abuse/test_spikes_abuse.py``, the short one)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

ALIKE = "@Nordtel no signal anywhere in Leeds since 9am, the whole street is down, ticket {}"


def alike_burst(brand: str, count: int, start: datetime, seconds: float, batch: int) -> Iterator[list[dict[str, Any]]]:
    """``count`` near-identical messages for ``brand``, dated evenly over ``seconds`` from ``start``, as
    /v1/score request bodies' message lists of at most ``batch``."""
    for first in range(0, count, batch):
        yield [{"text": ALIKE.format(1000 + i), "brand": brand,
                "created_at": (start + timedelta(seconds=seconds * i / count)).isoformat()}
               for i in range(first, min(first + batch, count))]
