"""The warehouse's single writer, across processes: an exclusive file lock beside the DuckDB file.

DuckDB lets one process at a time open a database file for writing and fails at once (``Could not set
lock on file``) in any other. Every read-write warehouse connection, and every command or task that
writes the warehouse in several steps, holds :func:`hold` instead, so writers in other processes (a
flow's task, a ``devicerisk request`` from the command line) wait for their turn rather than fail. It
is re-entrant within a thread, so a step that holds it may call others that take it too; threads of
one process take turns. Readers take no lock: a reader that meets a writer gets DuckDB's lock error,
which :func:`is_lock_error` recognises, so tasks retry it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import ParamSpec, Protocol, TypeVar

import duckdb

P = ParamSpec("P")
R = TypeVar("R")

#: How long a writer waits for another process's write to finish before giving up.
DEFAULT_WAIT_SECONDS = 600.0
_POLL_SECONDS = 0.05


class WarehouseBusy(TimeoutError):
    """Another process kept the warehouse's writer lock for longer than the wait."""


_threads: dict[Path, threading.RLock] = {}
_held: dict[Path, int] = {}  # lock file -> its descriptor while this process holds it
_guard = threading.Lock()


def lock_path(warehouse: Path) -> Path:
    """The lock file of a warehouse file (``warehouse.duckdb.lock``, created owner-only)."""
    return warehouse.with_name(warehouse.name + ".lock")


@contextmanager
def hold(warehouse: Path, wait_seconds: float = DEFAULT_WAIT_SECONDS) -> Iterator[None]:
    """Be the warehouse's only writer for the block: wait up to ``wait_seconds`` for other processes."""
    path = lock_path(warehouse.resolve())
    with _guard:
        rlock = _threads.setdefault(path, threading.RLock())
    deadline = time.monotonic() + wait_seconds
    if not rlock.acquire(timeout=wait_seconds):
        raise WarehouseBusy(f"the warehouse is being written by another thread for more than {wait_seconds:.0f} s")
    try:
        if path in _held:  # this thread already holds the file lock further up the stack
            yield
            return
        _held[path] = _acquire(path, deadline, wait_seconds)
        try:
            yield
        finally:
            os.close(_held.pop(path))  # closing the descriptor releases the lock
    finally:
        rlock.release()


class _HasWarehouse(Protocol):
    warehouse_path: Path


def exclusive(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` as the warehouse's only writer; its first argument (the stores, an ingest context) names the
    warehouse by its ``warehouse_path``. One definition for every caller: a flow's task and the command line."""

    @wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        owner: _HasWarehouse = args[0]  # type: ignore[assignment]
        with hold(owner.warehouse_path):
            return fn(*args, **kwargs)

    return run


def _acquire(path: Path, deadline: float, wait_seconds: float) -> int:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                os.close(fd)
                if err.errno in (errno.EAGAIN, errno.EACCES):
                    raise WarehouseBusy(
                        f"another process has been writing the warehouse for more than {wait_seconds:.0f} s"
                    ) from None
                raise
        time.sleep(_POLL_SECONDS)


def is_lock_error(err: BaseException) -> bool:
    """Whether ``err`` is DuckDB refusing a file another process has open, or a writer-lock wait that timed out."""
    if isinstance(err, WarehouseBusy):
        return True
    text = str(err)
    return isinstance(err, duckdb.Error) and ("Could not set lock" in text or "Conflicting lock" in text)
