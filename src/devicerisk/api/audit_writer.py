"""The service's audit records, written by group commit.

Every request is audited before it is answered, and a record is on disk (fsynced) when :meth:`GroupAudit.record`
returns. One fsync per request would cap a busy service at the disk's flush rate, so requests that arrive while a
flush runs wait for the next one, which writes all of them at once (``audit.append_many``): the first waiting
request becomes the writer, the others sleep until it is done.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from devicerisk.store import audit


@dataclass(slots=True)
class _Ticket:
    body: dict[str, object]
    done: bool = False
    error: BaseException | None = field(default=None)


class GroupAudit:
    """Appends to one audit trail for many threads, one flush for all the records waiting."""

    def __init__(self, trail: audit.Trail) -> None:
        self.trail = trail
        self._cond = threading.Condition()
        self._queue: list[_Ticket] = []
        self._flushing = False

    def record(self, body: dict[str, object]) -> None:
        """Write ``body`` (from ``audit.body``) and return once it is on disk; raises what the write raised."""
        ticket = _Ticket(body)
        with self._cond:
            self._queue.append(ticket)
            while not ticket.done:
                if self._flushing:
                    self._cond.wait()
                    continue
                batch, self._queue, self._flushing = self._queue, [], True
                self._cond.release()
                error: BaseException | None = None
                try:
                    audit.append_many(self.trail, [t.body for t in batch])
                except BaseException as err:  # every request of the batch fails with it: none was audited
                    error = err
                finally:
                    self._cond.acquire()
                for t in batch:
                    t.done, t.error = True, error
                self._flushing = False
                self._cond.notify_all()
        if ticket.error is not None:
            raise ticket.error
