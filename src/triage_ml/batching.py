"""Micro-batching: concurrent requests are collected for a few milliseconds and encoded together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import anyio

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """Runs ``fn(items) -> (results, extra)`` in a worker thread on batches gathered from many callers.

    A caller awaits ``submit(items)`` and gets its own slice of results plus the batch's ``extra`` (for
    example, which model version produced them). One batch runs at a time; requests
    that arrive while it runs form the next one (up to ``max_items``), after waiting at most ``max_wait``
    seconds for more.
    """

    def __init__(self, fn: Callable[[list[T]], tuple[list[R], Any]], *, max_items: int, max_wait: float) -> None:
        self.fn = fn
        self.max_items = max_items
        self.max_wait = max_wait
        self._queue: asyncio.Queue[tuple[Sequence[T], asyncio.Future]] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, items: Sequence[T]) -> tuple[list[R], Any]:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put((items, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            size = len(jobs[0][0])
            # Take what is already waiting (it queued while the previous batch ran), then wait up to
            # max_wait for more; with max_wait 0 a lone request never waits for company.
            deadline = loop.time() + self.max_wait
            while size < self.max_items:
                if not self._queue.empty():
                    job = self._queue.get_nowait()
                else:
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(self._queue.get(), timeout)
                    except TimeoutError:
                        break
                jobs.append(job)
                size += len(job[0])
            await self._execute(jobs)

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
