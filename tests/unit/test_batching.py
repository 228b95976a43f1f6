"""The micro-batcher: order, slicing, turns between callers, one model per request, withdrawn callers."""

from __future__ import annotations

import asyncio
import time

import pytest

from triage_ml.batching import MicroBatcher


class Encoder:
    """A stand-in for the model's batch function: doubles numbers, notes each batch, takes ``seconds``."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.batches: list[list[int]] = []
        self.version = "v1"

    def __call__(self, items: list[int]) -> tuple[list[int], str]:
        time.sleep(self.seconds)
        self.batches.append(list(items))
        return [2 * x for x in items], self.version


def run(coro):
    return asyncio.run(coro)


def test_one_request_is_sliced_and_answered_in_order():
    async def main():
        encoder = Encoder()
        batcher = MicroBatcher(encoder, max_items=4, max_wait=0)
        batcher.start()
        results, version = await batcher.submit(list(range(10)))
        await batcher.stop()
        return encoder, results, version

    encoder, results, version = run(main())
    assert results == [2 * x for x in range(10)] and version == "v1"
    assert [len(b) for b in encoder.batches] == [4, 4, 2]


def test_slices_respect_the_cost_budget_and_a_costly_item_stands_alone():
    batcher = MicroBatcher(Encoder(), max_items=100, max_wait=0, cost=lambda x: x, max_cost=10)
    assert [list(s) for s in batcher.slices([3, 3, 3, 3, 25, 1])] == [[3, 3, 3], [3], [25], [1]]


def test_a_small_request_does_not_wait_for_a_large_one_from_another_caller():
    async def main():
        encoder = Encoder(seconds=0.05)
        batcher = MicroBatcher(encoder, max_items=8, max_wait=0)
        batcher.start()
        large = asyncio.create_task(batcher.submit(list(range(1000, 1080)), "bulk"))  # 10 slices
        await asyncio.sleep(0.02)  # the bulk caller's first slice is running
        small, _ = await batcher.submit([7], "one-message")
        await large
        await batcher.stop()
        return encoder, small

    encoder, small = run(main())
    assert small == [14]
    where = next(i for i, b in enumerate(encoder.batches) if 7 in b)
    assert where <= 1  # the batch after the one running when it came, not after all 10 of the bulk caller's


def test_a_model_swap_between_slices_gives_one_version_per_request():
    encoder = Encoder()

    def swapping(items: list[int]) -> tuple[list[int], str]:
        out = encoder(items)
        encoder.version = "v2"  # the model is swapped after the first batch
        return out

    async def main():
        batcher = MicroBatcher(swapping, max_items=2, max_wait=0)
        batcher.start()
        results, version = await batcher.submit([1, 2, 3, 4, 5])
        await batcher.stop()
        return results, version

    results, version = run(main())
    assert version == "v2" and results == [2, 4, 6, 8, 10]
    assert encoder.batches[0] == [1, 2] and [1, 2] in encoder.batches[1:]  # the v1 slice ran again


def test_an_error_reaches_the_caller_and_the_batcher_lives_on():
    calls = []

    def failing_once(items: list[int]) -> tuple[list[int], str]:
        calls.append(items)
        if len(calls) == 1:
            raise ValueError("encoder broke")
        return [2 * x for x in items], "v1"

    async def main():
        batcher = MicroBatcher(failing_once, max_items=2, max_wait=0)
        batcher.start()
        with pytest.raises(ValueError, match="encoder broke"):
            await batcher.submit([1, 2, 3, 4, 5, 6])
        again = await batcher.submit([9])
        await batcher.stop()
        return again

    assert run(main()) == ([18], "v1")
    assert [9] in calls and len(calls) <= 3  # the failed request's later slices were withdrawn, not all run


def test_a_caller_that_goes_away_has_its_slices_withdrawn():
    async def main():
        encoder = Encoder(seconds=0.05)
        batcher = MicroBatcher(encoder, max_items=1, max_wait=0)
        batcher.start()
        task = asyncio.create_task(batcher.submit(list(range(20))))
        await asyncio.sleep(0.08)
        task.cancel()
        await asyncio.sleep(0.2)
        await batcher.stop()
        return encoder

    assert len(run(main()).batches) < 6
