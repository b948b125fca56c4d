"""Reading landing batches: bytes to candidate records, catching what is broken before parsing.

A batch's id is the SHA-256 of its bytes (:func:`devicerisk.store.landing.batch_id_of`), so a batch
that lands twice, under any name, is recognised. Truncated gzip keeps what was recovered and rejects
the cut-off record.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from devicerisk.contract.fields import MAX_RECORD_BYTES
from devicerisk.store import landing
from devicerisk.store.quarantine import Rejected

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


@dataclass(slots=True)
class RawBatch:
    """A batch split into records: those to parse, and those already rejected."""

    batch_id: str
    file_name: str
    lines: list[bytes] = field(default_factory=list)
    line_numbers: Sequence[int] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The batch's bytes, when ``lines`` are all of its lines, each followed by one newline.
    contiguous: bytes | None = None
    line_lengths: np.ndarray | None = None  # with ``contiguous``
    file_bytes: int = 0
    #: (size, mtime_ns) of the file when it was read, to notice a file replaced since.
    file_version: tuple[int, int] | None = None

    @property
    def records_read(self) -> int:
        return len(self.lines) + len(self.rejected)

    def line_array(self) -> pa.Array:
        """The records as an Arrow binary array (zero-copy over the batch's bytes when contiguous)."""
        if self.contiguous is None or self.line_lengths is None:
            return pa.array(self.lines, pa.binary())
        ends = np.cumsum(self.line_lengths + 1)
        offsets = np.concatenate([[0], ends]).astype(np.int64)
        buffers = [None, pa.py_buffer(offsets), pa.py_buffer(self.contiguous)]
        return pa.Array.from_buffers(pa.large_binary(), len(self.lines), buffers)


def _gunzip(raw: bytes) -> tuple[bytes, str | None]:
    """Decompress, keeping what can be recovered from a truncated or corrupt stream."""
    out: list[bytes] = []
    stream = zlib.decompressobj(wbits=31)
    for start in range(0, len(raw), _CHUNK):
        try:
            out.append(stream.decompress(raw[start : start + _CHUNK]))
        except zlib.error:
            return b"".join(out), "corrupt gzip stream: the records after the damage are lost"
        while stream.eof and stream.unused_data:  # concatenated gzip members
            rest = stream.unused_data
            stream = zlib.decompressobj(wbits=31)
            try:
                out.append(stream.decompress(rest))
            except zlib.error:
                return b"".join(out), "trailing bytes after the gzip stream were ignored"
    if not stream.eof:
        return b"".join(out), "truncated gzip stream"
    return b"".join(out), None


def split_records(batch_id: str, file_name: str, data: bytes, cut_off: bool = False) -> RawBatch:
    """Split NDJSON bytes into records, rejecting oversize ones up front."""
    batch = RawBatch(batch_id, file_name)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif cut_off and lines:
        last = lines.pop()
        batch.rejected.append(Rejected(len(lines) + 1, "truncated gzip: record cut off", last))
    # Encoding is checked by the parsers, which reject a record with invalid UTF-8 by its own reason.
    lengths = np.fromiter(map(len, lines), np.int64, len(lines))
    if not cut_off and lines and lengths.max() <= MAX_RECORD_BYTES and all(map(bytes.strip, lines)):
        batch.lines, batch.line_numbers = lines, range(1, len(lines) + 1)  # the common case: nothing to skip
        batch.contiguous = data if data.endswith(b"\n") else data + b"\n"
        batch.line_lengths = lengths
        return batch
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # a blank line is not a record
        if len(line) > MAX_RECORD_BYTES:
            batch.rejected.append(Rejected(number, f"record exceeds {MAX_RECORD_BYTES} bytes", line))
            continue
        batch.lines.append(line)
        batch.line_numbers.append(number)  # type: ignore[attr-defined]
    return batch


def read_batch(path: Path) -> RawBatch:
    """Read one landing file (NDJSON, optionally gzip) into a :class:`RawBatch`."""
    version = landing.file_version(path)
    raw = landing.read_bytes(path)
    batch_id = landing.batch_id_of(raw)
    note = None
    if raw.startswith(GZIP_MAGIC):
        data, note = _gunzip(raw)
    else:
        data = raw
    batch = split_records(batch_id, path.name, data, cut_off=note is not None)
    batch.file_bytes = len(raw)
    batch.file_version = version
    if note:
        batch.notes.append(note)
    if not raw:
        batch.notes.append("empty file")
    return batch
