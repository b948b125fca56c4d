"""Small Arrow helpers shared by the privacy transforms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def map_distinct(values: pa.Array | pa.ChunkedArray, fn: Callable[[Any], Any], out_type: pa.DataType) -> pa.Array:
    """Apply a Python function once per distinct non-null value and broadcast the results back.

    Telemetry repeats the same device, network and user agent on many events, so this turns a
    per-row Python cost into a per-distinct-value one.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if len(values) == 0:
        return pa.array([], type=out_type)
    encoded = pc.dictionary_encode(values)
    results = pa.array([fn(v) for v in encoded.dictionary.to_pylist()], type=out_type)
    return results.take(encoded.indices)


def null_where(values: pa.Array, mask: pa.Array) -> pa.Array:
    """``values`` with nulls where ``mask`` is true (a null mask keeps the value)."""
    return pc.if_else(pc.fill_null(mask, False), pa.nulls(len(values), values.type), values)


def empty_to_null(values: pa.Array) -> pa.Array:
    """Empty strings become null."""
    return null_where(values, pc.equal(pc.utf8_length(values), 0))
