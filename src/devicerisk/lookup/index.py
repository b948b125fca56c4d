"""Sorted indexes of pseudonym columns: one lookup is a binary search (O(log n)) in a NumPy array.

Pseudonyms are fixed-width hex text, so a column becomes one contiguous ``S<width>`` array (no Python object per
row: 1M keys take 32 MB); a column of mixed widths falls back to an object array, searched the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def keys_of(values: pa.Array) -> np.ndarray:
    """A string array (no nulls) as a NumPy array that sorts and compares like the strings."""
    if len(values) == 0:
        return np.array([], dtype="S1")
    lengths = pc.binary_length(values)
    width = pc.min(lengths).as_py()
    if width != pc.max(lengths).as_py() or width == 0 or not pa.types.is_string(values.type):
        return np.array(values.to_pylist(), dtype=object)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[values.offset : values.offset + len(values) + 1]
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[0] + width * len(values)]
    return data.view(f"S{width}")


def _probe(keys: np.ndarray, key: str) -> str | bytes:
    return key if keys.dtype == object else key.encode()


@dataclass(frozen=True, slots=True)
class Index:
    """Sorted keys and, for each, its row in the table it indexes."""

    keys: np.ndarray
    rows: np.ndarray

    @classmethod
    def build(cls, column: pa.ChunkedArray | pa.Array, order: pa.Array | None = None) -> Index:
        """Index ``column``'s non-null values; ties keep ``order``'s order (default: row order)."""
        values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if order is None:
            return cls.of(values, np.arange(len(values), dtype=np.int64))
        return cls.of(values.take(order), np.asarray(order.to_numpy(zero_copy_only=False), dtype=np.int64))

    @classmethod
    def of(cls, keys: pa.ChunkedArray | pa.Array, rows: np.ndarray) -> Index:
        """Index ``keys[i] -> rows[i]`` (null keys left out; ties keep their order)."""
        values = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
        valid = pc.is_valid(values)
        sortable = keys_of(values.filter(valid))
        rows = rows[valid.to_numpy(zero_copy_only=False)]
        sort = np.argsort(sortable, kind="stable")
        return cls(sortable[sort], rows[sort])

    @classmethod
    def sorted_column(cls, column: pa.ChunkedArray | pa.Array) -> Index:
        """Index a column already sorted (nulls last): its row positions are the search's."""
        values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        n = len(values) - values.null_count
        return cls(keys_of(values.slice(0, n)), np.arange(n, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.keys)

    def span(self, key: str) -> np.ndarray:
        """The rows whose key is ``key``, in tie order (empty if none)."""
        if len(self.keys) == 0:
            return self.rows[:0]
        probe = _probe(self.keys, key)
        return self.rows[self.keys.searchsorted(probe, "left") : self.keys.searchsorted(probe, "right")]

    def first(self, key: str) -> int | None:
        """The first row whose key is ``key``, or None."""
        found = self.span(key)
        return int(found[0]) if len(found) else None
