"""The warehouse's single writer across processes: a writer waits for another process's lock, never fails on it."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from devicerisk.store import governance, warehouse, writer


@contextmanager
def other_process(code: str) -> Iterator[subprocess.Popen[str]]:
    """A second Python process that runs ``code``, says "ready", and keeps what it holds until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", f"{code}\nprint('ready', flush=True)\nimport sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def test_a_writer_waits_for_another_process_holding_the_writer_lock(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with warehouse.connect(path):
        pass  # the schema in place
    done: list[int] = []

    def write() -> None:
        governance.forget_subjects(path, datetime.now(UTC))  # a write: a read-write connection
        done.append(1)

    with other_process(
        f"from devicerisk.store import writer; from pathlib import Path; "
        f"h = writer.hold(Path({str(path)!r})); h.__enter__()"
    ):
        thread = threading.Thread(target=write)
        thread.start()
        thread.join(timeout=1.5)
        assert thread.is_alive() and not done  # it waits: DuckDB alone would have failed at once
    thread.join(timeout=30)
    assert done == [1]


def test_a_wait_longer_than_allowed_is_a_lock_error(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with (
        other_process(
            f"from devicerisk.store import writer; from pathlib import Path; "
            f"h = writer.hold(Path({str(path)!r})); h.__enter__()"
        ),
        pytest.raises(writer.WarehouseBusy) as caught,
        writer.hold(path, wait_seconds=0.3),
    ):
        pass
    assert writer.is_lock_error(caught.value)


def test_duckdbs_own_lock_error_is_recognised_and_others_are_not(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    duckdb.connect(str(path)).close()
    with other_process(f"import duckdb; con = duckdb.connect({str(path)!r})"), pytest.raises(duckdb.Error) as caught:
        duckdb.connect(str(path), read_only=True)  # a reader meets a writer in another process
    assert writer.is_lock_error(caught.value)
    assert not writer.is_lock_error(ValueError("Could not set lock"))  # not DuckDB's
    with pytest.raises(duckdb.Error) as other:
        duckdb.connect(":memory:").execute("SELECT * FROM missing_table")
    assert not writer.is_lock_error(other.value)


def test_the_lock_is_reentrant_within_a_thread_and_shared_by_threads_in_turn(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    order: list[str] = []
    with writer.hold(path), writer.hold(path):  # a step that holds it calls another that takes it too
        thread = threading.Thread(target=lambda: (writer.hold(path).__enter__(), order.append("other thread")))
        thread.start()
        thread.join(timeout=0.5)
        order.append("first thread")
    thread.join(timeout=10)
    assert order == ["first thread", "other thread"]
    assert (writer.lock_path(path).stat().st_mode & 0o777) == 0o600
