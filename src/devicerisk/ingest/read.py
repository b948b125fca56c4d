"""Reading landing batches: bytes to candidate records, catching what is broken before parsing.

A batch's id is the SHA-256 of its bytes (:func:`devicerisk.store.landing.batch_id_of`), so a batch
that lands twice, under any name, is recognised. Truncated gzip keeps what was recovered and rejects
the cut-off record.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import overload

import numpy as np
import pyarrow as pa

from devicerisk.contract.fields import MAX_RECORD_BYTES
from devicerisk.store import landing
from devicerisk.store.quarantine import Rejected

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
_WHITESPACE = b" \t\r\x0b\x0c"  # what bytes.strip removes, besides the newline split on


class ContiguousLines(Sequence[bytes]):
    """The records of a batch as views over its bytes: no Python object per record until one is asked for.

    Splitting 100,000 records into ``bytes`` objects held the GIL for about 90 ms a batch; finding the
    newlines with numpy takes a fifth of that and lets the commit thread run meanwhile.
    """

    __slots__ = ("data", "starts")

    def __init__(self, data: bytes, starts: np.ndarray) -> None:
        self.data = data  # ends with a newline
        self.starts = starts  # n + 1 offsets: record i is data[starts[i] : starts[i + 1] - 1]

    @classmethod
    def of(cls, data: bytes) -> ContiguousLines | None:
        """The records of ``data`` if none is blank or oversize (the common case), else None."""
        body = data if data.endswith(b"\n") else data + b"\n"
        octets = np.frombuffer(body, np.uint8)
        # in 1 MiB slices: a mask of the whole batch would be a fresh 60 MB allocation, paid in page faults
        newlines = [
            np.flatnonzero(octets[at : at + _CHUNK] == ord("\n")) + (at + 1) for at in range(0, len(body), _CHUNK)
        ]
        starts = np.concatenate([np.zeros(1, np.int64), *newlines]).astype(np.int64)
        lengths = np.diff(starts) - 1
        if lengths.min() == 0 or lengths.max() > MAX_RECORD_BYTES:
            return None
        lines = cls(body, starts)
        # a record that starts with whitespace may be blank: only those few are checked one by one
        padded = np.flatnonzero(np.isin(octets[starts[:-1]], np.frombuffer(_WHITESPACE, np.uint8)))
        return lines if all(lines[int(i)].strip() for i in padded) else None

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __iter__(self) -> Iterator[bytes]:
        data, starts = self.data, self.starts.tolist()
        return (data[a : b - 1] for a, b in pairwise(starts))

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | list[bytes]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.data[self.starts[index] : self.starts[index + 1] - 1]

    def arrow(self) -> pa.Array:
        """The records as an Arrow binary array, zero-copy over the bytes; each keeps its trailing newline,
        which no type-guard pattern matches."""
        buffers = [None, pa.py_buffer(self.starts), pa.py_buffer(self.data)]
        return pa.Array.from_buffers(pa.large_binary(), len(self), buffers)


@dataclass(slots=True)
class RawBatch:
    """A batch split into records: those to parse, and those already rejected."""

    batch_id: str
    file_name: str
    lines: Sequence[bytes] = field(default_factory=list)
    line_numbers: Sequence[int] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    file_bytes: int = 0
    #: (size, mtime_ns) of the file when it was read, to notice a file replaced since.
    file_version: tuple[int, int] | None = None

    @property
    def records_read(self) -> int:
        return len(self.lines) + len(self.rejected)

    def line_array(self) -> pa.Array:
        """The records as an Arrow binary array (zero-copy over the batch's bytes when contiguous)."""
        if isinstance(self.lines, ContiguousLines):
            return self.lines.arrow()
        return pa.array(list(self.lines), pa.binary())


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
    if not data:
        return batch
    if not cut_off and (contiguous := ContiguousLines.of(data)) is not None:
        batch.lines, batch.line_numbers = contiguous, range(1, len(contiguous) + 1)  # nothing to skip
        return batch
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif cut_off and lines:
        last = lines.pop()
        batch.rejected.append(Rejected(len(lines) + 1, "truncated gzip: record cut off", last))
    # Encoding is checked by the parsers, which reject a record with invalid UTF-8 by its own reason.
    kept: list[bytes] = []
    numbers: list[int] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # a blank line is not a record
        if len(line) > MAX_RECORD_BYTES:
            batch.rejected.append(Rejected(number, f"record exceeds {MAX_RECORD_BYTES} bytes", line))
            continue
        kept.append(line)
        numbers.append(number)
    batch.lines, batch.line_numbers = kept, numbers
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
