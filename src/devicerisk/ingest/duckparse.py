"""The fast parse path: DuckDB's multi-threaded NDJSON reader with a strict type guard.

DuckDB reads a whole landing file into the contract's typed columns several times faster than
Arrow's JSON reader. It is lenient, though: it casts ``"12"`` to 12 and ``5`` to ``'5'``. The type
guard restores strictness: one RE2 pattern, generated from the contract, flags every record in which
a declared key is followed by a value of the wrong JSON type. Flagged records are checked one by one
by :func:`devicerisk.ingest.validate.line_reason`, which has the last word. Anything DuckDB cannot
read (malformed JSON, invalid UTF-8, duplicate keys, out-of-range numbers) makes this path step
aside for the Arrow path, which isolates the bad records.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.contract.fields import FIELDS
from devicerisk.contract.model import Field, Kind
from devicerisk.contract.schema import nest_paths
from devicerisk.store import landing

_DUCK_TYPES = {
    Kind.STRING: "VARCHAR",
    Kind.TIMESTAMP: "VARCHAR",
    Kind.INT: "BIGINT",
    Kind.FLOAT: "DOUBLE",
    Kind.BOOL: "BOOLEAN",
    Kind.STRING_LIST: "VARCHAR[]",
}

# What may NOT start a value of each kind, after `"key":`. JSON values start with one of
# `"` - digit t f n { [`, so each pattern lists the starts that are another type.
_STRING_ITEM = r'"(?:[^"\\]|\\.)*"'
_WRONG_START = {
    Kind.STRING: r"[\-0-9tf{\[]",
    Kind.TIMESTAMP: r"[\-0-9tf{\[]",
    Kind.INT: r'(?:["tf{\[]|-?[0-9]+[.eE])',
    Kind.FLOAT: r'["tf{\[]',
    Kind.BOOL: r'["\-0-9{\[]',
    # not a list, or a list with an item that is not a string
    Kind.STRING_LIST: rf'(?:["\-0-9tf{{]|\[\s*(?:{_STRING_ITEM}\s*,\s*)*[^"\s\]])',
}
_OBJECT_WRONG_START = r'["\-0-9tf\[]'
# A key spelled with \u escapes of ASCII characters would slip past the key names above.
_ESCAPED_ASCII = r"\\u00[0-7][0-9a-fA-F]"
# JSON that DuckDB tolerates and orjson (rightly) does not: non-finite literals, trailing commas.
_NON_STANDARD = r"[:,\[]\s*[-+]?(?i:nan|inf)|,\s*[}\]]"
_SPLIT_ABOVE = 20_000  # records; below this a second thread costs more than it saves


@cache
def read_columns(fields: tuple[Field, ...] = FIELDS) -> dict[str, str]:
    """DuckDB ``columns=`` spec: the contract's nested structure with typed leaves."""
    tree = nest_paths(fields, lambda f: _DUCK_TYPES[f.kind])

    def render(node: dict[str, Any]) -> str:
        inner = ", ".join(f'"{k}" {render(v) if isinstance(v, dict) else v}' for k, v in node.items())
        return f"STRUCT({inner})"

    return {k: render(v) if isinstance(v, dict) else v for k, v in tree.items()}


@cache
def type_guard(fields: tuple[Field, ...] = FIELDS) -> str:
    """One RE2 pattern matching any record where a declared key holds a value of the wrong type."""
    by_start: dict[str, set[str]] = {}
    objects: set[str] = set()
    for f in fields:
        *parents, leaf = f.path.split(".")
        by_start.setdefault(_WRONG_START[f.kind], set()).add(leaf)
        objects.update(parents)
    parts = [rf'"(?:{"|".join(sorted(keys))})"\s*:\s*{start}' for start, keys in by_start.items()]
    parts.append(rf'"(?:{"|".join(sorted(objects))})"\s*:\s*{_OBJECT_WRONG_START}')
    parts += [_ESCAPED_ASCII, _NON_STANDARD]
    return "|".join(parts)


def read_typed(path: Path) -> pa.Table | None:
    """The file's records in the contract's typed columns, or None if DuckDB cannot read them all."""
    return landing.read_json_typed(path, read_columns())


def suspicious(lines: pa.Array) -> pa.Array:
    """True for each record (a binary array of lines) that the type guard flags for a strict check.

    One regex call runs on one core; a large batch is matched in two halves at once (Arrow releases
    the GIL), which halves the guard's wall time on two cores.
    """
    pattern = type_guard()
    if len(lines) < _SPLIT_ABOVE:
        return pc.match_substring_regex(lines, pattern)
    half = len(lines) // 2
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="guard") as pool:
        second = pool.submit(pc.match_substring_regex, lines.slice(half), pattern)
        first = pc.match_substring_regex(lines.slice(0, half), pattern)
        return pa.concat_arrays([first, second.result()])
