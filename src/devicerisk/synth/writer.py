"""Atomic, deterministic file output: telemetry batches, label files and the truth file.

Every file is written under a dot-prefixed temporary name and renamed when complete, so a reader
polling the directory never sees a partial batch. Gzip streams carry no timestamp or file name,
so the same events always give the same bytes.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

_GZIP_WBITS = 31  # zlib with a gzip header (mtime 0, no file name)
_CHUNK = 4096  # lines per write: keeps the text, its encoding and the queued chunks small


class AtomicFile:
    """A binary file that appears under its final name only when closed successfully."""

    def __init__(self, path: Path, compress: bool = False, level: int = 1) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self._fh: BinaryIO = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()/abort()
        self._z = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS) if compress else None

    def write(self, data: bytes) -> None:
        self._fh.write(self._z.compress(data) if self._z else data)

    def close(self) -> Path:
        if self._z:
            self._fh.write(self._z.flush())
        self._fh.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._fh.close()
        self.tmp.unlink(missing_ok=True)


class _Worker:
    """Runs file writes in submission order on one background thread.

    zlib and file I/O release the GIL, so compression overlaps with event generation on a second
    core; the queue is short, so at most a couple of chunks are in flight.
    """

    def __init__(self, depth: int = 2) -> None:
        self._queue: queue.Queue[tuple[Callable[..., object], tuple[object, ...]] | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="synth-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    item[0](*item[1])
                except BaseException as exc:  # handed to the producer on its next call
                    self._error = exc

    def submit(self, fn: Callable[..., object], *args: object) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((fn, args))

    def join(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error


class BatchWriter:
    """Splits a time-ordered event stream into batch files of at most ``per_batch`` events."""

    def __init__(self, directory: Path, per_batch: int, gzip: bool) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.per_batch = per_batch
        self.gzip = gzip
        self.events = 0
        self.batches: list[Path] = []
        self._file: AtomicFile | None = None
        self._count = 0
        self._worker = _Worker()

    def _open(self, first_ms: int) -> AtomicFile:
        start = datetime.fromtimestamp(first_ms / 1000, tz=UTC)
        suffix = ".ndjson.gz" if self.gzip else ".ndjson"
        name = f"batch-{start:%Y%m%dT%H%M}-{len(self.batches):05d}{suffix}"
        return AtomicFile(self.dir / name, compress=self.gzip)

    def write(self, events: list[tuple[int, str]]) -> None:
        """Append (arrival ms, line) pairs, already in order, rotating files as they fill."""
        i = 0
        while i < len(events):
            if self._file is None:
                self._file = self._open(events[i][0])
                self._count = 0
            take = min(len(events) - i, self.per_batch - self._count, _CHUNK)
            self._worker.submit(self._file.write, "".join([line for _, line in events[i : i + take]]).encode())
            self._count += take
            self.events += take
            i += take
            if self._count >= self.per_batch:
                self._rotate()

    def _rotate(self) -> None:
        assert self._file is not None
        self._worker.submit(self._file.close)
        self.batches.append(self._file.path)
        self._file = None

    def close(self) -> None:
        """Finish the last batch and wait until every batch is renamed into place."""
        if self._file is not None:
            self._rotate()
        self._worker.join()

    def abort(self) -> None:
        """Stop after a failure: finished batches stay, the open one's temp file is removed."""
        with contextlib.suppress(BaseException):
            self._worker.join()
        if self._file is not None:
            self._file.abort()
            self._file = None


class LabelWriter:
    """One plain NDJSON file per delivery of labels."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.files: list[Path] = []

    def write(self, lines: list[bytes]) -> None:
        if not lines:
            return
        f = AtomicFile(self.dir / f"labels-{len(self.files):05d}.ndjson")
        f.write(b"".join(lines))
        self.files.append(f.close())
