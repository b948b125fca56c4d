"""Redaction of identifiers typed into kept text: IMEI, IMSI, ICCID, MAC, phone, IP, email, advertising id.

Fields stored as they are (a page path, an exception type, a device model) can carry an identifier that a
user typed or a buggy app wrote. Before the lake, every such substring is replaced by a marker naming its
kind (``[imei]``, ``[phone]``, ...), and the redactions are counted.

It is cheap because it is two-stage. One RE2 pattern (:data:`PREFILTER`, run in Arrow over a column's
distinct values) picks the values that could hold an identifier at all; only those go through the exact
Python checks: check digits (python-stdnum), phonenumbers, ipaddress. Telemetry repeats its values,
so the Python work is per distinct candidate value, not per row.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from stdnum import imei, imsi, luhn
from stdnum import mac as stdnum_mac

from devicerisk.contract.model import Field

#: The kinds of identifier found, in the order they are looked for; the marker of a kind is ``[kind]``.
KINDS = ("email", "adid", "mac", "ip", "imei", "iccid", "imsi", "phone")

#: Fewest digits of a national phone number that is looked for (shorter ones read as ids, not numbers).
PHONE_MIN_DIGITS = 8

_HEX = "[0-9A-Fa-f]"
#: A superset of every shape found below, as one RE2 pattern: '@', ':', a hex-dash run (MAC, UUID), a Cisco
#: MAC, a dotted quad, '+' before a digit, or PHONE_MIN_DIGITS digits (full-width ones too) with at most two
#: separators between.
PREFILTER = "|".join(
    (
        "@",
        ":",
        f"{_HEX}{{2}}-{_HEX}{{2}}-",
        f"{_HEX}{{8}}-",
        rf"{_HEX}{{4}}\.{_HEX}{{4}}\.",
        r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]",
        r"\+[ (]?\p{Nd}",
        rf"\p{{Nd}}(?:[-. ()]{{0,2}}\p{{Nd}}){{{PHONE_MIN_DIGITS - 1}}}",
    )
)

_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")
_UUID = re.compile(rf"(?<!{_HEX}){_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}(?!{_HEX})")
_MAC = re.compile(
    rf"(?<!{_HEX}[:-])(?<!{_HEX})(?:{_HEX}{{2}}[:-]){{5}}{_HEX}{{2}}(?![:-]?{_HEX})"
    rf"|(?<!{_HEX}\.)(?<!{_HEX}){_HEX}{{4}}\.{_HEX}{{4}}\.{_HEX}{{4}}(?!\.?{_HEX})"
)
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%\w+)?(?!\w)")
_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?!\.?\d)")
_DIGIT_RUN = re.compile(r"(?<!\d)(?:\d{14,22}|\d{2}[- ]\d{6}[- ]\d{6}[- ]\d)(?!\d)")  # and IMEI's printed grouping
_GLUED_NUMBER = re.compile(r"(?<!\d)\d{10,13}(?!\d)")  # a phone number glued to letters, as in "tel13800138000"


@dataclass(frozen=True, slots=True)
class Redacted:
    """A text with its identifiers replaced by markers, and the identifiers found (kind, text as written)."""

    text: str
    identifiers: tuple[tuple[str, str], ...] = ()


def _ip(token: str) -> bool:
    token = token.rstrip(".:")
    if not any(c.isalnum() for c in token):
        return False
    try:
        ipaddress.ip_address(token.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _mac(token: str) -> str | None:
    """The kind "mac" for a MAC address in any printed form (any OUI: an unregistered vendor identifies too)."""
    hexes = re.sub(r"[^0-9A-Fa-f]", "", token)
    colons = ":".join(hexes[i : i + 2] for i in range(0, len(hexes), 2))
    return "mac" if stdnum_mac.is_valid(colons, validate_manufacturer=False) else None


def _long_number(token: str) -> str | None:
    """The kind of a run of 14 to 22 digits: IMEI and ICCID by their Luhn check digit, IMSI by its home network."""
    digits = "".join(str(int(c)) for c in token if c.isdecimal())  # full-width digits too
    if len(digits) == 15 and imei.is_valid(digits):
        return "imei"
    if 18 <= len(digits) <= 22 and digits.startswith("89") and luhn.is_valid(digits):
        return "iccid"
    if len(digits) in (14, 15) and imsi.is_valid(digits):
        return "imsi"
    return None


def _valid_phone(text: str, region: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, region))
    except phonenumbers.NumberParseException:
        return False


Found = list[tuple[str, str]]


def _substitute(text: str, pattern: re.Pattern[str], kind_of: Callable[[str], str | None], found: Found) -> str:
    def replace(match: re.Match[str]) -> str:
        kind = kind_of(match.group())
        if kind is None:
            return match.group()
        found.append((kind, match.group()))
        return f"[{kind}]"

    return pattern.sub(replace, text)


def _phones(text: str, region: str, found: Found) -> str:
    """Phone numbers replaced: those phonenumbers finds in the text, then long digit runs glued to letters."""
    matches = [
        m
        for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)
        if m.raw_string.lstrip().startswith("+") or sum(c.isdigit() for c in m.raw_string) >= PHONE_MIN_DIGITS
    ]
    for m in reversed(matches):
        text = f"{text[: m.start]}[phone]{text[m.end :]}"
    found += [("phone", m.raw_string) for m in matches]
    return _substitute(text, _GLUED_NUMBER, lambda t: "phone" if _valid_phone(t, region) else None, found)


@lru_cache(maxsize=1 << 14)  # the same values recur from batch to batch
def redact_text(text: str, region: str = "CN") -> Redacted:
    """``text`` with every identifier-shaped substring replaced by ``[kind]`` (national phone numbers read in
    ``region``). Markers hold no digits, so a later stage never finds part of an earlier one's identifier."""
    found: Found = []
    text = _substitute(text, _EMAIL, lambda _: "email", found)
    text = _substitute(text, _UUID, lambda _: "adid", found)
    text = _substitute(text, _MAC, _mac, found)
    text = _substitute(text, _IPV6, lambda t: "ip" if _ip(t) else None, found)
    text = _substitute(text, _IPV4, lambda t: "ip" if _ip(t) else None, found)
    text = _substitute(text, _DIGIT_RUN, _long_number, found)
    text = _phones(text, region, found)
    return Redacted(text, tuple(found))


def redact_column(values: pa.Array, region: str = "CN") -> tuple[pa.Array, Counter[str]]:
    """A string column with identifiers redacted (see :func:`redact_text`), and the count of each kind found.

    Only the distinct values that :data:`PREFILTER` selects reach Python; a column without any comes back
    as it is.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count == len(values):
        return values, Counter()
    distinct = pc.unique(values)  # half the cost of a dictionary encoding, and most columns stop here
    candidates = distinct.filter(pc.fill_null(pc.match_substring_regex(distinct, PREFILTER), False))
    changed = [(text, r) for text in candidates.to_pylist() if (r := redact_text(text, region)).identifiers]
    if not changed:
        return values, Counter()
    which = pc.index_in(values, value_set=pa.array([text for text, _ in changed], pa.string()))
    uses = np.bincount(which.drop_null().to_numpy(), minlength=len(changed))
    found: Counter[str] = Counter()
    for (_, r), n in zip(changed, uses, strict=True):
        for kind, _ in r.identifiers:
            found[kind] += int(n)
    replacements = pa.array([r.text for _, r in changed], pa.string()).take(which.drop_null())
    return pc.replace_with_mask(values, which.is_valid(), replacements), found


def redact_fields(table: pa.Table, fields: tuple[Field, ...], region: str = "CN") -> tuple[pa.Table, Counter[str]]:
    """``table`` with the kept text of every field the contract says is redacted (:attr:`Field.redacted`)
    redacted, and the count of each kind found."""
    found: Counter[str] = Counter()
    for f in fields:
        if f.redacted and f.column in table.column_names:
            column, n = redact_column(table.column(f.column), region)
            table = table.set_column(table.schema.get_field_index(f.column), f.column, column)
            found.update(n)
    return table, found


def describe(found: Counter[str]) -> str | None:
    """A ledger note of the redactions, in :data:`KINDS` order (None when nothing was found)."""
    if not found:
        return None
    return "identifiers redacted from kept text: " + ", ".join(f"{k} {found[k]}" for k in KINDS if found[k])
