"""Reading landing batches: bytes to candidate records, catching what is broken before parsing.

A batch's id is the SHA-256 of its bytes (:func:`devicerisk.store.landing.batch_id_of`), so a batch
that lands twice, under any name, is recognised. Truncated gzip keeps what was recovered and rejects
the cut-off record. Sizes are bounded while the file streams in, before anything is buffered: a record
over the record bound is cut out (its start kept for quarantine), and a batch is read up to the batch
bound (the rest is one reject), so a small gzip file that inflates to gigabytes costs no memory.
"""

from __future__ import annotations

import hashlib
import itertools
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import overload

import numpy as np
import pyarrow as pa

from devicerisk.contract.fields import MAX_BATCH_BYTES, MAX_RECORD_BYTES
from devicerisk.store import landing
from devicerisk.store.quarantine import Rejected

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20  # newline search slice
_READ = 256 << 10  # gzip input read at a time
_INFLATE = 4 << 20  # most gzip output produced at a time
_KEPT_RECORDS = 16  # of a record over the bound, quarantine keeps this many times the bound (then its start)
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
    def of(cls, data: bytes, max_record: int = MAX_RECORD_BYTES) -> ContiguousLines | None:
        """The records of ``data`` if none is blank or oversize (the common case), else None."""
        body = data if data.endswith(b"\n") else data + b"\n"
        octets = np.frombuffer(body, np.uint8)
        # in 1 MiB slices: a mask of the whole batch would be a fresh 60 MB allocation, paid in page faults
        newlines = [
            np.flatnonzero(octets[at : at + _CHUNK] == ord("\n")) + (at + 1) for at in range(0, len(body), _CHUNK)
        ]
        starts = np.concatenate([np.zeros(1, np.int64), *newlines]).astype(np.int64)
        lengths = np.diff(starts) - 1
        if lengths.min() == 0 or lengths.max() > max_record:
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


class _Gather:
    """Decompressed bytes, gathered within the bounds before anything else is buffered.

    A record longer than ``max_record`` is cut out as it streams past: only its first ``keep`` bytes
    are held, for quarantine, and a blank line takes its place so later records keep their numbers.
    Past ``max_batch`` bytes, the unfinished record and the rest of the file become one reject.
    Finding the long records costs one ``rfind`` per ``max_record`` bytes, not one step per record.
    """

    def __init__(self, max_record: int, max_batch: int) -> None:
        self.max_record, self.max_batch = max_record, max_batch
        self.keep = _KEPT_RECORDS * max_record
        self.parts: list[bytes] = []
        self.size = 0  # decompressed bytes seen
        self.carried = 0  # bytes of the unfinished last record held in ``parts``
        self.cut: bytearray | None = None  # the kept start of a long record still streaming past
        self.rejected: list[Rejected] = []
        self.full = False
        self._counted = (0, 0)  # (parts counted, newlines in them): line numbers without recounting

    def feed(self, data: bytes) -> None:
        """Take the next decompressed bytes (ignored once the batch bound is reached)."""
        if self.full or not data:
            return
        room = self.max_batch - self.size
        self.size += len(data)
        if len(data) <= room:
            self._add(data)
            return
        self._add(data[:room])
        self.full = True
        rest = data[room:]
        if self.cut is not None:
            start, self.cut = bytes(self.cut), None
        else:
            start = self._take_tail(self.carried) + rest[: self.keep - self.carried]
        self.carried = 0
        reason = f"batch exceeds {self.max_batch} bytes decompressed: the rest of the file is not read"
        self.rejected.append(Rejected(self._line_number(), reason, start))

    def data(self) -> bytes:
        """The bytes gathered (a record still being cut off at the end is rejected)."""
        if self.cut is not None:
            self._too_long(bytes(self.cut))
            self.cut = None
        return b"".join(self.parts)

    def _add(self, data: bytes) -> None:
        n, rec = len(data), 0  # rec: where the current record starts in ``data``
        if self.cut is not None:  # a long record streaming past: skip to its end
            end = data.find(b"\n")
            self.cut += data[: max(0, min(self.keep - len(self.cut), n if end < 0 else end))]
            if end < 0:
                return
            self._too_long(bytes(self.cut))
            self.cut, rec = None, end + 1
        span, carried = rec, self.carried
        while True:
            stop = rec + self.max_record - carried  # the current record must end at or before this index
            if stop >= n:
                last = data.rfind(b"\n", rec)
                if last >= 0:
                    carried, rec = 0, last + 1
                break
            last = data.rfind(b"\n", rec, stop + 1)
            if last >= 0:  # every record up to this newline is short enough
                carried, rec = 0, last + 1
                continue
            self._append(data[span:rec])
            end = data.find(b"\n", stop + 1)
            start = self._take_tail(carried) + data[rec : min(rec + self.keep - carried, n if end < 0 else end)]
            if end < 0:
                self.cut, self.carried = bytearray(start), 0
                return
            self._too_long(start)
            carried, rec = 0, end + 1
            span = rec
        self._append(data[span:])
        self.carried = carried + n - rec

    def _append(self, data: bytes) -> None:
        if data:
            self.parts.append(data)

    def _too_long(self, start: bytes) -> None:
        self.rejected.append(Rejected(self._line_number(), f"record exceeds {self.max_record} bytes", start))
        self.parts.append(b"\n")  # a blank line in its place

    def _line_number(self) -> int:
        """The number of the record that begins after the bytes held."""
        counted, lines = self._counted
        counted = min(counted, len(self.parts))
        lines += sum(p.count(b"\n") for p in self.parts[counted:])
        self._counted = (len(self.parts), lines)
        return lines + 1

    def _take_tail(self, n: int) -> bytes:
        """Remove the last ``n`` bytes held (part of one unfinished record, so no newline) and return them."""
        taken: list[bytes] = []
        while n > 0:
            last = self.parts.pop()
            if len(last) > n:
                self.parts.append(last[:-n])
                last = last[-n:]
            taken.append(last)
            n -= len(last)
        return b"".join(reversed(taken))


def _inflate(chunks: Iterator[bytes], gather: _Gather) -> str | None:
    """Decompress gzip ``chunks`` into ``gather``, keeping what can be recovered from a damaged stream.

    Output is produced a slice at a time, so a small file that inflates enormously is never held whole.
    """
    stream, new_member = zlib.decompressobj(wbits=31), False
    for chunk in chunks:
        data = chunk
        while data and not gather.full:
            try:
                gather.feed(stream.decompress(data, _INFLATE))
            except zlib.error:
                if new_member:
                    return "trailing bytes after the gzip stream were ignored"
                return "corrupt gzip stream: the records after the damage are lost"
            new_member = False
            if stream.unconsumed_tail:
                data = stream.unconsumed_tail
            elif stream.eof and stream.unused_data:  # concatenated gzip members
                data, stream, new_member = stream.unused_data, zlib.decompressobj(wbits=31), True
            else:
                data = b""
        if gather.full:
            return None
    return None if stream.eof else "truncated gzip stream"


def split_records(
    batch_id: str, file_name: str, data: bytes, cut_off: bool = False, max_record: int = MAX_RECORD_BYTES
) -> RawBatch:
    """Split NDJSON bytes into records, rejecting oversize ones up front."""
    batch = RawBatch(batch_id, file_name)
    if not data:
        return batch
    if not cut_off and (contiguous := ContiguousLines.of(data, max_record)) is not None:
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
        if len(line) > max_record:
            batch.rejected.append(Rejected(number, f"record exceeds {max_record} bytes", line))
            continue
        kept.append(line)
        numbers.append(number)
    batch.lines, batch.line_numbers = kept, numbers
    return batch


def read_batch(path: Path, max_record: int = MAX_RECORD_BYTES, max_batch: int = MAX_BATCH_BYTES) -> RawBatch:
    """Read one landing file (NDJSON, optionally gzip) into a :class:`RawBatch`, within the size bounds.

    The batch id covers the whole file, also the part past ``max_batch`` that is not read.
    """
    version = landing.file_version(path)
    digest = landing.content_digest()
    # a plain file is read at once (no copy to join); a gzip file a slice at a time
    first = _READ if path.name.endswith(".gz") else min(version[0], max_batch) + 1
    chunks = _hashed(landing.read_chunks(path, first, _READ), digest)
    head = next(chunks, b"")
    gather = _Gather(max_record, max_batch)
    if head.startswith(GZIP_MAGIC):
        note = _inflate(itertools.chain([head], chunks), gather)
    else:
        note = None
        for chunk in itertools.chain([head], chunks):
            gather.feed(chunk)
    for _ in chunks:  # the rest of a file past the bound still counts towards its id
        pass
    batch = split_records(landing.batch_id_of_digest(digest), path.name, gather.data(), note is not None, max_record)
    batch.rejected = sorted([*gather.rejected, *batch.rejected], key=lambda r: r.line)
    batch.file_bytes = version[0]
    batch.file_version = version
    if note:
        batch.notes.append(note)
    if gather.full:
        batch.notes.append(f"more than {max_batch} bytes decompressed: the rest of the file was not read")
    if not head:
        batch.notes.append("empty file")
    return batch


def _hashed(chunks: Iterator[bytes], digest: hashlib._Hash) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk
