"""The service's audit records, written by group commit.

Every request is audited before it is answered: a record is on disk (fsynced) when :meth:`GroupAudit.record`
returns, or when :meth:`GroupAudit.arecord` is awaited. One fsync per request would cap a busy service at the
disk's flush rate, so records that arrive together go out in one write and one flush (``audit.Appender``, which
keeps the trail's files open):

- ``async`` endpoints (the lookups) queue their record in the event loop, and one callback, run once the loop
  has served every request that was ready, writes them all (a flush takes a fraction of a millisecond; handing
  it to a thread would wait for the interpreter lock while the loop is busy, up to its 5 ms switch interval);
- plain endpoints, in the thread pool, hand theirs to a writer thread, which writes whatever has queued.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future

from devicerisk.store import audit

log = logging.getLogger(__name__)


class GroupAudit:
    """Appends to one audit trail for every request of the process, one flush for all the records waiting."""

    def __init__(self, trail: audit.Trail) -> None:
        self.trail = trail
        self._appender = audit.Appender(trail)
        self._cond = threading.Condition()
        self._queue: list[tuple[dict[str, object], Future[None]]] = []
        self._closed = False
        self._thread: threading.Thread | None = None
        self._in_loop: list[tuple[dict[str, object], asyncio.Future[None]]] = []  # the event loop's own queue

    def submit(self, body: dict[str, object]) -> Future[None]:
        """Queue ``body`` (from ``audit.body``); the future is done once it is on disk, or has the write's error."""
        done: Future[None] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the audit writer is closing")
            if self._thread is None:
                self._thread = threading.Thread(target=self._write, name="audit-writer", daemon=True)
                self._thread.start()
            self._queue.append((body, done))
            self._cond.notify()
        return done

    def record(self, body: dict[str, object]) -> None:
        """Write ``body`` and return once it is on disk; raises what the write raised."""
        self.submit(body).result()

    async def arecord(self, body: dict[str, object]) -> None:
        """:meth:`record` for a coroutine: queued in the event loop and written with the others queued in the
        same turn of the loop."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        if not self._in_loop:
            loop.call_soon(self._write_in_loop)  # after the requests that are ready now have queued theirs
        self._in_loop.append((body, done))
        await done

    def _write_in_loop(self) -> None:
        batch, self._in_loop = self._in_loop, []
        error = self._flush([body for body, _ in batch])
        for _, done in batch:
            if done.done():  # a request whose client left was still audited
                continue
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)
        if error is not None and not isinstance(error, Exception):
            raise error  # an interrupt is the loop's to handle, not the requests'

    def _flush(self, bodies: list[dict[str, object]]) -> BaseException | None:
        """Write ``bodies`` in one group commit; the error, if it failed (then none of them was audited)."""
        try:
            self._appender.append(bodies)
        except BaseException as err:
            log.error("audit write failed for %d records: %s", len(bodies), type(err).__name__)
            return err
        return None

    def close(self) -> None:
        """Write what is queued, then stop the writer (a later record starts a new one)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._cond:
            self._closed, self._thread = False, None
        self._appender.close()

    def _write(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
            # a request cancelled while queued (its client left) is still audited; only its answer is gone
            waiting = [done for _, done in batch if done.set_running_or_notify_cancel()]
            error = self._flush([body for body, _ in batch])
            for done in waiting:
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)
