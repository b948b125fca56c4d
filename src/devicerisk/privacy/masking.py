"""Desensitised display (5.2.2(2)): the one masking function for everything a person reads.

The CLI, exports, notebooks, Prefect artifacts and the API all call :func:`mask` (or
:func:`mask_columns` for tables, :func:`mask_record` for raw records) before showing an identifier, raw
or pseudonymised.
A masked value keeps only enough to tell two values apart at a glance and to match it
against what the subject holds (the last few characters), never enough to re-identify.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

import orjson
import pyarrow as pa

from devicerisk.contract.fields import FIELDS, LABEL_FIELDS
from devicerisk.contract.model import Action, Kind, Sensitivity

MaskKind = Literal["auto", "pseudonym", "phone", "email", "ip", "identifier"]

_PSEUDONYM = re.compile(r"^[0-9a-f]{32}$")
_EMAIL = re.compile(r"^([^@\s]+)@([^@\s]+)$")
_PHONE = re.compile(r"^\+?[\d\s()-]{7,}$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_FILL = "*"
PSEUDONYM_SHOWN = 8  # hex digits of a pseudonym shown: enough to tell rows apart, 32 bits only


def mask(value: str | None, kind: MaskKind = "auto") -> str | None:
    """Return ``value`` desensitised for display; ``None`` stays ``None``.

    Args:
        value: a raw identifier (phone, e-mail, IMEI, IP, account id) or a 32-hex pseudonym.
        kind: how to mask; ``"auto"`` recognises pseudonyms, e-mails, IPv4/IPv6 and phones,
            and masks anything else as a generic identifier.

    Returns:
        A string that never contains more than a short prefix or suffix of ``value``.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return text
    resolved = _resolve(text) if kind == "auto" else kind
    return _MASKERS[resolved](text)


def is_pseudonym(value: str) -> bool:
    """Whether ``value`` has the form of a pseudonym (32 lower-case hex digits): what lookups by pseudonym take."""
    return bool(_PSEUDONYM.match(value))


def mask_many(values: Iterable[str | None], kind: MaskKind = "auto") -> list[str | None]:
    """:func:`mask` applied to each of ``values``."""
    return [mask(v, kind) for v in values]


def mask_columns(table: pa.Table, columns: Iterable[str] | None = None) -> pa.Table:
    """``table`` with identifier columns masked for display.

    By default the masked columns are every string column whose name ends in ``_pid``
    (the lake's pseudonyms) or is listed in ``columns``.
    """
    chosen = set(columns or ()) | {name for name in table.column_names if name.endswith("_pid")}
    for name in sorted(chosen & set(table.column_names)):
        index = table.column_names.index(name)
        masked = pa.array(mask_many(table.column(name).to_pylist()), pa.string())
        table = table.set_column(index, name, masked)
    return table


def _shown_paths() -> dict[str, Kind]:
    """Paths of a raw record shown as received, with their kind: what the lake keeps in clear and can identify
    nobody by itself (not personal, or a time, number or flag). Every other value, free text and unknown fields
    included, is masked."""
    plain = (Kind.TIMESTAMP, Kind.INT, Kind.FLOAT, Kind.BOOL)
    return {
        f.path: f.kind
        for f in (*FIELDS, *LABEL_FIELDS)
        if Action.KEEP in f.actions and (f.sensitivity is Sensitivity.NONE or f.kind in plain)
    }


_SHOWN = _shown_paths()
_JSON_TYPES = {Kind.STRING: str, Kind.TIMESTAMP: str, Kind.INT: int, Kind.FLOAT: (int, float), Kind.BOOL: bool}


def _shown(value: object, path: str) -> bool:
    """Whether ``value`` is shown: a flag, or a value of a shown path of the kind the contract declares."""
    kind = _SHOWN.get(path)
    if isinstance(value, bool):
        return True
    return kind is not None and isinstance(value, _JSON_TYPES.get(kind, ()))


def _mask_value(value: object, path: str) -> object:
    if isinstance(value, dict):
        return {k: _mask_value(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_value(v, path) for v in value]
    if value is None or _shown(value, path):
        return value
    return mask(str(value), "auto" if isinstance(value, str) else "identifier")


def mask_record(raw: bytes | str) -> str:
    """A raw (landing or quarantined) JSON record as JSON text, every value masked but those of :data:`_SHOWN`.

    A record that is not a JSON object is masked whole.
    """
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        record = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    return orjson.dumps(_mask_value(record, "") if isinstance(record, dict) else mask(str(record))).decode()


def mask_records(table: pa.Table, column: str) -> pa.Table:
    """``table`` with its ``column`` of raw JSON records masked by :func:`mask_record`."""
    index = table.column_names.index(column)
    masked = pa.array([None if r is None else mask_record(r) for r in table.column(column).to_pylist()], pa.string())
    return table.set_column(index, column, masked)


def _resolve(text: str) -> MaskKind:
    if _PSEUDONYM.match(text):
        return "pseudonym"
    if _EMAIL.match(text):
        return "email"
    if _IPV4.match(text) or (":" in text and all(c in "0123456789abcdefABCDEF:." for c in text)):
        return "ip"
    if _PHONE.match(text) and (text.startswith("+") or len(text) <= 13):  # 14+ bare digits: IMEI, IMSI, ICCID
        return "phone"
    return "identifier"


def _pseudonym(text: str) -> str:
    return text[:PSEUDONYM_SHOWN] + "…"


def _phone(text: str) -> str:
    digits = [c for c in text if c.isdigit()]
    head = 3 if len(digits) >= 11 else 2
    shown = digits[:head] + [_FILL] * (len(digits) - head - 4) + digits[-4:]
    return ("+" if text.startswith("+") else "") + "".join(shown)


def _email(text: str) -> str:
    local, domain = text.split("@", 1)
    return local[0] + _FILL * 3 + "@" + domain


def _ip(text: str) -> str:
    if "." in text and ":" not in text:
        parts = text.split(".")
        return ".".join([*parts[:2], _FILL, _FILL])
    groups = text.split(":")
    return ":".join(groups[:2]) + ":" + _FILL


def _identifier(text: str) -> str:
    if len(text) <= 8:  # too short to show any part of it
        return _FILL * len(text)
    return _FILL * (len(text) - 4) + text[-4:]


_MASKERS = {
    "pseudonym": _pseudonym,
    "phone": _phone,
    "email": _email,
    "ip": _ip,
    "identifier": _identifier,
}
