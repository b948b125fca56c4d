"""Bounded lookahead over real futures: order, depth, early stop, failures, and settled results."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from devicerisk.ingest.lookahead import Settled, lookahead

WAIT = 10  # seconds: a bound for events that should come at once, so a bug fails instead of hanging


class Recorder:
    """Submits to a real thread pool and records each submission in order."""

    def __init__(self, pool: ThreadPoolExecutor, work: Callable[[int], int]) -> None:
        self.pool, self.work = pool, work
        self.submitted: list[int] = []
        self.futures: dict[int, Future[int]] = {}

    def __call__(self, item: int) -> Future[int]:
        self.submitted.append(item)
        self.futures[item] = self.pool.submit(self.work, item)
        return self.futures[item]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


def _square_later_first(n: int) -> Callable[[int], int]:
    """Squares, the later items finishing first."""

    def work(i: int) -> int:
        time.sleep(0.002 * (n - i))
        return i * i

    return work


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_results_come_in_order_with_at_most_depth_items_submitted_ahead(pool: ThreadPoolExecutor, depth: int) -> None:
    n = 8
    submit = Recorder(pool, _square_later_first(n))
    seen: list[tuple[int, int]] = []  # (result, items submitted when it was handed over)
    for result in lookahead(range(n), submit, depth=depth):
        seen.append((result, len(submit.submitted)))

    assert [r for r, _ in seen] == [i * i for i in range(n)]
    assert [s for _, s in seen] == [min(n, i + depth + 1) for i in range(n)]
    assert submit.submitted == list(range(n))


def test_an_endless_source_is_read_only_as_far_as_needed(pool: ThreadPoolExecutor) -> None:
    submit = Recorder(pool, lambda i: i)
    taken = list(itertools.islice(lookahead(itertools.count(), submit, depth=2), 5))
    assert taken == [0, 1, 2, 3, 4]
    assert submit.submitted == list(range(7))


def test_stopping_early_cancels_the_work_not_yet_started() -> None:
    started, release = threading.Event(), threading.Event()
    ran: list[int] = []

    def work(i: int) -> int:
        if i == 1:
            started.set()
            release.wait(WAIT)
        ran.append(i)
        return i

    with ThreadPoolExecutor(max_workers=1) as one:  # one worker: items 2 and 3 wait in its queue
        submit = Recorder(one, work)
        results = lookahead(range(10), submit, depth=3)
        assert next(results) == 0
        assert started.wait(WAIT)  # item 1 is running
        results.close()  # the consumer stops
        release.set()

    assert submit.submitted == [0, 1, 2, 3]
    assert submit.futures[2].cancelled() and submit.futures[3].cancelled()
    assert not submit.futures[1].cancelled() and submit.futures[1].result() == 1
    assert ran == [0, 1]


def test_a_failing_item_raises_at_its_turn_and_cancels_the_rest() -> None:
    release = threading.Event()

    def work(i: int) -> int:
        if i == 2:
            raise ValueError(f"item {i} is broken")
        if i == 3:
            release.wait(WAIT)  # keeps the single worker busy: item 4 waits in the queue
        return i

    got: list[int] = []
    with ThreadPoolExecutor(max_workers=1) as one:
        submit = Recorder(one, work)
        with pytest.raises(ValueError, match="item 2 is broken"):
            for result in lookahead(range(10), submit, depth=2):
                got.append(result)
        release.set()

    assert got == [0, 1]
    assert submit.submitted == [0, 1, 2, 3, 4]
    assert submit.futures[4].cancelled()


def test_settled_hands_back_the_item_with_its_result_or_its_exception(pool: ThreadPoolExecutor) -> None:
    def work(i: int) -> int:
        if i % 3 == 1:
            raise RuntimeError(f"no {i}")
        return 10 * i

    out = list(lookahead(range(6), lambda i: Settled(i, pool.submit(work, i)), depth=2))

    assert [item for item, _ in out] == list(range(6))  # the failures did not stop the items after them
    for item, value in out:
        if item % 3 == 1:
            assert isinstance(value, RuntimeError) and str(value) == f"no {item}"
        else:
            assert value == 10 * item


def test_settled_forwards_cancel_to_its_pending_result() -> None:
    waiting: Future[int] = Future()  # not started: it can be cancelled
    settled = Settled("item", waiting)
    settled.cancel()
    assert waiting.cancelled()

    done: Future[int] = Future()
    done.set_result(7)
    finished = Settled("other", done)
    finished.cancel()  # too late to cancel: the result stays
    assert not done.cancelled() and finished.result() == ("other", 7)
