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


async def gather_owners(batcher: MicroBatcher, requests: list[tuple[str, list[int]]]) -> list:
    """Submit every (owner, items) at once, in this order; the worker sees them all queued."""
    return await asyncio.gather(*(batcher.submit(items, owner) for owner, items in requests),
                                return_exceptions=True)


def test_a_batch_takes_whole_slices_from_several_callers_up_to_max_items():
    async def main():
        encoder = Encoder()
        batcher = MicroBatcher(encoder, max_items=4, max_wait=0)
        batcher.start()
        out = await gather_owners(batcher, [("a", [1, 2]), ("b", [3, 4]), ("c", [5]), ("d", [6, 7, 8])])
        await batcher.stop()
        return encoder, out

    encoder, out = run(main())
    assert encoder.batches == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert out == [([2, 4], "v1"), ([6, 8], "v1"), ([10], "v1"), ([12, 14, 16], "v1")]


def test_a_batch_stops_at_the_cost_cap_across_callers():
    async def main():
        encoder = Encoder()
        batcher = MicroBatcher(encoder, max_items=100, max_wait=0, cost=lambda x: x, max_cost=10)
        batcher.start()
        out = await gather_owners(batcher, [("a", [6]), ("b", [5]), ("c", [4])])
        await batcher.stop()
        return encoder, out

    encoder, out = run(main())
    assert encoder.batches == [[6], [5, 4]]  # 6 + 5 > 10: b waits for the next batch, where c fits beside it
    assert [results for results, _ in out] == [[12], [10], [8]]


@pytest.mark.parametrize("limits", [{"max_items": 3}, {"max_items": 100, "cost": lambda x: x, "max_cost": 10}])
def test_a_full_batch_does_not_wait_for_max_wait(limits):
    async def main():
        batcher = MicroBatcher(Encoder(), max_wait=5, **limits)
        batcher.start()
        start = time.perf_counter()
        results, _ = await batcher.submit([4, 3, 3])  # 3 items, cost 10: full either way
        elapsed = time.perf_counter() - start
        await batcher.stop()
        return results, elapsed

    results, elapsed = run(main())
    assert results == [8, 6, 6] and elapsed < 2.5


def test_a_batch_waits_up_to_max_wait_for_company():
    async def main():
        encoder = Encoder()
        batcher = MicroBatcher(encoder, max_items=10, max_wait=0.4)
        batcher.start()
        start = time.perf_counter()
        first = asyncio.create_task(batcher.submit([1], "a"))
        await asyncio.sleep(0.1)
        second = await batcher.submit([2], "b")
        waited = time.perf_counter() - start
        out = (await first, second)
        await batcher.stop()
        return encoder, out, waited

    encoder, out, waited = run(main())
    assert encoder.batches == [[1, 2]] and out == (([2], "v1"), ([4], "v1"))
    assert 0.35 <= waited < 2.0  # the lone first request waited max_wait for the second, then no longer


def test_callers_take_turns_one_slice_each_newcomers_first():
    """a has three one-message requests queued, b two, c one: each batch takes one slice per owner, the owner
    served longest ago (a newcomer before anyone) first, so b and c are not served after all of a's."""
    async def main():
        encoder = Encoder()
        batcher = MicroBatcher(encoder, max_items=2, max_wait=0)
        batcher.start()
        await gather_owners(batcher, [("a", [1]), ("a", [2]), ("a", [3]), ("b", [10]), ("b", [11]), ("c", [20])])
        await batcher.stop()
        return encoder

    assert run(main()).batches == [[1, 10], [20, 2], [11, 3]]


def test_a_failing_batch_fails_only_its_own_callers():
    def poisoned(items: list[int]) -> tuple[list[int], str]:
        if 0 in items:
            raise ValueError("cannot encode 0")
        return [2 * x for x in items], "v1"

    async def main():
        batcher = MicroBatcher(poisoned, max_items=2, max_wait=0)
        batcher.start()
        # batch 1: a's [0] and c's [5] (fails); then b's two slices, each in a batch of its own
        out = await gather_owners(batcher, [("a", [0]), ("c", [5]), ("b", [1, 2, 3, 4])])
        await batcher.stop()
        return out

    a, c, b = run(main())
    assert isinstance(a, ValueError) and str(a) == "cannot encode 0"
    assert isinstance(c, ValueError) and str(c) == "cannot encode 0"
    assert b == ([2, 4, 6, 8], "v1")


def test_stop_drains_the_callers_already_waiting():
    async def main():
        batcher = MicroBatcher(Encoder(seconds=0.1), max_items=2, max_wait=0)
        batcher.start()
        caller = asyncio.create_task(batcher.submit([1, 2, 3, 4]))
        await asyncio.sleep(0.05)  # its first slice is being encoded
        await batcher.stop()
        return await asyncio.wait_for(caller, 0.5)

    assert run(main()) == ([2, 4, 6, 8], "v1")


def test_a_slice_left_over_from_a_full_batch_waits_no_longer_than_max_wait():
    async def main():
        batcher = MicroBatcher(Encoder(seconds=0.15), max_items=2, max_wait=0.3)
        batcher.start()
        start = time.perf_counter()
        results, _ = await batcher.submit([1, 2, 3])  # [1, 2] is full and runs at once; [3] has been queued since
        elapsed = time.perf_counter() - start
        await batcher.stop()
        return results, elapsed

    results, elapsed = run(main())
    # [3] may start by max_wait (0.3 s) after it was queued, so the reply comes by 0.45 s; today it is >= 0.6 s
    assert results == [2, 4, 6] and elapsed < 0.5
