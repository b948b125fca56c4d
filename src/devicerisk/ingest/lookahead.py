"""Bounded lookahead: work on the next item while the caller handles the current one."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R", covariant=True)


class Pending(Protocol[R]):
    """A future: a concurrent.futures.Future or a Prefect future."""

    def result(self) -> R: ...


def lookahead(items: Iterable[T], submit: Callable[[T], Pending[R]], depth: int = 1) -> Iterator[R]:
    """Yield ``submit(item).result()`` in order, with at most ``depth`` items submitted ahead.

    Memory stays bounded by ``depth + 1`` results, whatever the number of items. If the consumer
    stops early, work already submitted is cancelled where it has not started.
    """
    queue: list[Pending[R]] = []
    iterator = iter(items)
    try:
        for item in iterator:
            queue.append(submit(item))
            if len(queue) > depth:
                yield queue.pop(0).result()
        while queue:
            yield queue.pop(0).result()
    finally:
        for future in queue:
            cancel = getattr(future, "cancel", None)
            if cancel is not None:
                cancel()


class Settled(Generic[T, R]):
    """An item's pending result that, when asked, hands back the item with the result or the exception raised:
    one failing item does not stop the items after it."""

    def __init__(self, item: T, pending: Pending[R]) -> None:
        self.item, self.pending = item, pending

    def result(self) -> tuple[T, R | Exception]:
        try:
            return self.item, self.pending.result()
        except Exception as err:
            return self.item, err

    def cancel(self) -> None:
        cancel = getattr(self.pending, "cancel", None)
        if cancel is not None:
            cancel()
