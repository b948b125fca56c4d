"""Leak scan: look for raw identifiers from the landing zone in every other file under ``data/``.

The identifiers are the raw values of the personal fields the contract does not keep, and every identifier
typed into a kept text field (found the way the privacy transform finds them, before it redacts them).

The scan reads files the way a person or program would: Parquet and Arrow IPC cells, DuckDB and
SQLite tables, and text. It does not grep compressed bytes, which would miss a leak inside a compressed column.
Every Parquet file on disk is read, not only the current table version, so bytes that a Delta
table no longer references but has not vacuumed still count.
"""

from __future__ import annotations

import gzip
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from devicerisk.contract.fields import FIELDS
from devicerisk.contract.model import Action, Field, Kind, Sensitivity
from devicerisk.privacy.minimise import ip_prefix
from devicerisk.privacy.normalise import canonical_ip, canonical_phone
from devicerisk.privacy.redact import redact_text

_TOKEN = re.compile(r"[0-9A-Za-z+]+(?:[:.\-_]+[0-9A-Za-z]+)*")
_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")  # '@' splits the tokens above, so emails are tokens too
MIN_TOKEN = 6  # shorter values (e.g. "CN", "wifi") are not identifiers


@dataclass(slots=True)
class Finding:
    """A raw value found outside the landing zone."""

    path: Path
    where: str
    kind: str


@dataclass(slots=True)
class ScanReport:
    """What was scanned and what was found."""

    files: int = 0
    values: int = 0
    findings: list[Finding] = field(default_factory=list)


def _variants(value: str) -> set[str]:
    """Printed forms of one identifier that a leak could take."""
    value = value.strip()
    lower = value.lower()
    if (ip := canonical_ip(value)) is not None:
        prefix = ip_prefix(ip)
        if prefix is not None and prefix.split("/")[0] == ip:
            return set()  # a network's own address is its kept prefix, which identifies nobody
        # Addresses are always printed with separators; without them "192.168.3.10" would match
        # the kept prefix "192.168.31.0/24".
        return {f for f in (value, lower, ip) if len(f) >= MIN_TOKEN}
    forms = {value, lower, re.sub(r"[^0-9a-z]", "", lower)}
    digits = re.sub(r"[^0-9]", "", value)
    if len(digits) >= 14 and digits == re.sub(r"[^0-9]", "", lower):
        forms.add(digits[:14])  # IMEI TAC+SNR, the normalised form
    if (phone := canonical_phone(value, "CN")) is not None and len(digits) >= 7:
        forms |= {phone, phone.lstrip("+")}
    return {f for f in forms if len(f) >= MIN_TOKEN}


def _sensitive_paths() -> dict[str, str]:
    """Contract paths whose raw values must never leave landing: personal strings the contract does not keep."""
    return {
        f.path: f.category
        for f in FIELDS
        if f.sensitivity is not Sensitivity.NONE and Action.KEEP not in f.actions and f.kind is Kind.STRING
    }


def _kept_text(kept_field: Field, value: str, found: dict[str, str]) -> str:
    """The text a kept field stores for ``value``; an identifier typed into it (which must not reach the lake)
    is added to ``found`` in all its printed forms."""
    if not kept_field.redacted:
        return value
    redacted = redact_text(value)
    for kind, identifier in redacted.identifiers:
        for form in _variants(identifier):
            found.setdefault(form, f"{kept_field.path} ({kind} in kept text)")
    return redacted.text


def _value_at(record: dict, path: str) -> object:
    node: object = record
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def raw_identifiers(landing_dir: Path) -> dict[str, str]:
    """Every sensitive raw value in the landing zone (in all its printed forms) -> its field path."""
    paths = _sensitive_paths()
    kept_fields = [f for f in FIELDS if Action.KEEP in f.actions and f.kind is Kind.STRING]
    kept: set[str] = set()  # values the contract keeps in clear (e.g. a model name) are no leak
    found: dict[str, str] = {}
    for file in sorted(landing_dir.rglob("*")):
        if not file.is_file() or file.name.startswith("."):
            continue
        data = file.read_bytes()
        if data.startswith(b"\x1f\x8b"):
            try:
                data = gzip.decompress(data)
            except (EOFError, OSError):
                continue
        for line in data.splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(record, dict):
                continue
            for path in paths:
                value = _value_at(record, path)
                if isinstance(value, str) and value.strip():
                    for form in _variants(value):
                        found.setdefault(form, path)
            for f in kept_fields:
                if isinstance(value := _value_at(record, f.path), str) and value not in kept:
                    stored = _kept_text(f, value, found)
                    kept.add(stored)
                    kept.update(_variants(stored))
    for placeholder in ("000000000000000", "00000000000000", "000000000000", "020000000000", "02:00:00:00:00:00"):
        found.pop(placeholder, None)  # shared placeholders identify nobody
    return {k: v for k, v in found.items() if k not in kept and not re.fullmatch(r"[0\-:]+", k)}


def _tokens(text: str) -> Iterator[str]:
    for token in (*_TOKEN.findall(text), *_EMAIL.findall(text)):
        yield token
        yield token.lower()
        yield re.sub(r"[^0-9a-z]", "", token.lower())


def _check_text(text: str, needles: dict[str, str], path: Path, where: str, report: ScanReport) -> None:
    report.values += 1
    if text in needles:
        report.findings.append(Finding(path, where, needles[text]))
        return
    for variant in (text, re.sub(r"\s+", "", text)):
        for token in _tokens(variant):
            if token in needles:
                report.findings.append(Finding(path, where, needles[token]))
                return


def _cells(table: pa.Table) -> Iterator[tuple[str, str]]:
    for name in table.column_names:
        for value in table.column(name).to_pylist():
            if value is not None:
                yield name, value if isinstance(value, str) else str(value)


def _scan_parquet(path: Path) -> Iterator[tuple[str, str]]:
    yield from _cells(pq.read_table(path))


def _scan_duckdb(path: Path) -> Iterator[tuple[str, str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [r[0] for r in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()]
        for name in tables:
            yield from ((f"{name}.{c}", v) for c, v in _cells(con.table(name).to_arrow_table()))
    finally:
        con.close()


def scan_sqlite(path: Path) -> Iterator[tuple[str, str]]:
    """Every cell of every table of a SQLite file (e.g. a Prefect database)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for name in tables:
            for row in con.execute(f'SELECT * FROM "{name}"'):  # names come from the file's own catalogue
                for value in row:
                    if value is not None:
                        yield name, value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    finally:
        con.close()


def _scan_file(path: Path) -> Iterable[tuple[str, str]]:
    head = path.read_bytes()[:16]
    if path.suffix == ".parquet":
        return _scan_parquet(path)
    if path.suffix == ".duckdb":
        return _scan_duckdb(path)
    if head.startswith(b"ARROW1"):  # Arrow IPC files (the signal log): cells, not bytes that run together
        return _cells(pa.ipc.open_file(pa.memory_map(str(path))).read_all())
    if head.startswith(b"SQLite format 3"):
        return scan_sqlite(path)
    return [("text", path.read_bytes().decode("utf-8", errors="replace"))]


def scan_files(files: Iterable[Path], needles: dict[str, str]) -> ScanReport:
    """Look for ``needles`` in ``files`` (encrypted files are read too: they must show nothing)."""
    report = ScanReport()
    for path in files:
        report.files += 1
        for where, text in _scan_file(path):
            _check_text(text, needles, path, where, report)
    return report


def scan_data_dir(data_dir: Path, extra_files: Iterable[Path] = ()) -> ScanReport:
    """Scan every file under ``data_dir`` except the landing zone, plus ``extra_files``."""
    landing = data_dir / "landing"
    needles = raw_identifiers(landing)
    files = [p for p in sorted(data_dir.rglob("*")) if p.is_file() and not p.is_relative_to(landing)]
    return scan_files([*files, *extra_files], needles)
