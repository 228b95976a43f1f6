"""Micro-batching: concurrent requests are collected for a few milliseconds and encoded together, and the
encoder is shared fairly between callers."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

import anyio

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """Runs ``fn(items) -> (results, extra)`` in a worker thread on batches gathered from many callers.

    A caller awaits ``submit(items, owner)`` and gets its own results plus the ``extra`` of the batch that
    produced them (for example, which model version). One batch runs at a time. A request is cut into
    slices of at most ``max_items`` items and ``max_cost`` cost (``cost(item)``, e.g. characters the
    encoder will read), and each batch takes slices from the waiting owners in turn: a one-message request
    that arrives while a caller's 256 long messages are being encoded rides in the next batch, not after
    all of them. A batch waits at most ``max_wait`` seconds for company once its first slice is there.
    Should the ``extra`` change between a request's slices (the model was swapped meanwhile), the older
    slices are run again, so a request's results always come from one ``extra``.
    """

    def __init__(self, fn: Callable[[list[T]], tuple[list[R], Any]], *, max_items: int, max_wait: float,
                 cost: Callable[[T], int] | None = None, max_cost: int | None = None) -> None:
        self.fn = fn
        self.max_items = max_items
        self.max_wait = max_wait
        self.cost = cost or (lambda _: 1)
        self.max_cost = max_cost if max_cost is not None else max_items
        self._waiting: dict[Hashable, deque[tuple[Sequence[T], asyncio.Future]]] = {}
        self._served: dict[Hashable, int] = {}  # owner -> when it was last served (a batch counter)
        self._batches = 0
        self._arrived = asyncio.Event()
        self._queued_at: dict[asyncio.Future, float] = {}  # each waiting slice's arrival (loop time)
        self._stopping = False
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self, drain_seconds: float = 30.0) -> None:
        """Answer the callers already waiting (their batches run at once, without waiting for company), then
        end; after ``drain_seconds`` whatever is left is cancelled. Nothing is accepted meanwhile."""
        self._stopping = True
        self._arrived.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), drain_seconds)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, items: Sequence[T], owner: Hashable = None) -> tuple[list[R], Any]:
        slices = self.slices(items)
        outcomes = await self._run_slices(slices, owner)
        while len({id(extra) for _, extra in outcomes}) > 1:  # a swap between slices: redo the older ones
            latest = outcomes[-1][1]
            redo = [i for i, (_, extra) in enumerate(outcomes) if extra is not latest]
            for i, outcome in zip(redo, await self._run_slices([slices[i] for i in redo], owner), strict=True):
                outcomes[i] = outcome
        return [r for results, _ in outcomes for r in results], outcomes[0][1]

    async def _run_slices(self, slices: list[Sequence[T]], owner: Hashable) -> list[tuple[list[R], Any]]:
        """Queue every slice at once, then wait for each; on an error or a cancelled caller the slices
        not yet run are withdrawn."""
        if self._stopping:
            raise RuntimeError("the batcher is stopping; no new work is taken")
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future] = []
        for part in slices:
            futures.append(loop.create_future())
            self._queued_at[futures[-1]] = loop.time()
            self._waiting.setdefault(owner, deque()).append((part, futures[-1]))
        self._arrived.set()
        try:
            return [await future for future in futures]
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()
                elif not future.cancelled():
                    future.exception()  # retrieved, so asyncio does not log it a second time

    def slices(self, items: Sequence[T]) -> list[Sequence[T]]:
        """``items`` cut in order into slices within ``max_items`` and ``max_cost`` (an item costing more
        than ``max_cost`` is a slice of its own)."""
        out: list[Sequence[T]] = []
        start, cost = 0, 0
        for i, item in enumerate(items):
            c = self.cost(item)
            if i > start and (i - start >= self.max_items or cost + c > self.max_cost):
                out.append(items[start:i])
                start, cost = i, 0
            cost += c
        out.append(items[start:])
        return out

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._waiting:
                if self._stopping:
                    return
                self._arrived.clear()
                await self._arrived.wait()
            # at most max_wait after the oldest waiting slice arrived (a slice left over from a full batch has
            # been waiting already); no waiting at all once stopping
            oldest = min(self._queued_at.get(queue[0][1], loop.time()) for queue in self._waiting.values())
            deadline = oldest + (0 if self._stopping else self.max_wait)
            while not self._full() and not self._stopping and (timeout := deadline - loop.time()) > 0:
                self._arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), timeout)
            jobs = self._take()
            if jobs:
                await self._execute(jobs)

    def _full(self) -> bool:
        parts = [part for queue in self._waiting.values() for part, _ in queue]
        return (sum(len(p) for p in parts) >= self.max_items
                or sum(self.cost(item) for p in parts for item in p) >= self.max_cost)

    def _take(self) -> list[tuple[Sequence[T], asyncio.Future]]:
        """The next batch: one slice from each waiting owner in turn, the longest unserved first (a newcomer
        before anyone served), while it fits."""
        self._batches += 1
        jobs: list[tuple[Sequence[T], asyncio.Future]] = []
        size = cost = 0
        while self._waiting:
            owner = min(self._waiting, key=lambda o: self._served.get(o, -1))
            queue = self._waiting[owner]
            part, future = queue[0]
            part_cost = sum(self.cost(item) for item in part)
            if jobs and (size + len(part) > self.max_items or cost + part_cost > self.max_cost):
                break
            queue.popleft()
            self._queued_at.pop(future, None)
            self._served[owner] = self._batches
            if not queue:
                del self._waiting[owner], self._served[owner]
            if future.cancelled():  # its caller went away
                continue
            jobs.append((part, future))
            size, cost = size + len(part), cost + part_cost
        return jobs

    async def _execute(self, jobs: list[tuple[Sequence[T], asyncio.Future]]) -> None:
        items = [item for batch, _ in jobs for item in batch]
        try:
            results, extra = await anyio.to_thread.run_sync(self.fn, items)
        except Exception as exc:  # the error goes to every caller of this batch, the worker lives on
            for _, future in jobs:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for batch, future in jobs:
            if not future.done():
                future.set_result((results[start:start + len(batch)], extra))
            start += len(batch)
