"""The contract's times: RFC 3339 with an explicit offset, kept to the microsecond, in a plausible window.

Ingest validates telemetry and labels with these rules and the treatment stores times in UTC by them, so
they live with the contract that states them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.contract.fields import EARLIEST_TIME, FUTURE_SKEW

RFC3339 = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|z|[+-]\d{2}:?\d{2})$"
SUB_MICROSECOND = r"(\.\d{6})\d+"  # kept to the microsecond, as the lake stores times
_RFC3339 = re.compile(RFC3339)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The times a batch may carry: not before the contract's earliest time, nor ``skew`` after its ingest."""

    latest: datetime
    skew: timedelta = FUTURE_SKEW
    earliest: datetime = EARLIEST_TIME

    @classmethod
    def at(cls, now: datetime | None = None, skew: timedelta = FUTURE_SKEW) -> TimeWindow:
        """The window of a batch ingested at ``now`` (default: the current time)."""
        return cls((now or datetime.now(UTC)) + skew, skew)

    def reason(self, path: str, when: datetime) -> str | None:
        """Why ``when`` (a time in field ``path``) is outside the window, or None; the reason quotes no value."""
        if when < self.earliest:
            return f"{path} is before {self.earliest:%Y-%m-%d}, the earliest time the contract accepts"
        if when > self.latest:
            return f"{path} is more than {self.skew.total_seconds() / 3600:g} hours ahead of the ingest time"
        return None

    def outside(self, times: pa.Array) -> pa.Array:
        """True where a UTC time (timestamp[us, UTC]) is outside the window; null where it is null."""
        utc = pa.timestamp("us", tz="UTC")
        early = pc.less(times, pa.scalar(self.earliest, utc))
        return pc.or_kleene(early, pc.greater(times, pa.scalar(self.latest, utc)))


def parse_timestamp(text: str) -> datetime | None:
    """An RFC 3339 time with an explicit offset, or None."""
    if not _RFC3339.match(text):
        return None
    try:
        return datetime.fromisoformat(re.sub(SUB_MICROSECOND, r"\1", text.replace("z", "Z")))
    except ValueError:
        return None


def utc_times(column: pa.Array) -> pa.Array:
    """RFC 3339 strings (shape already checked) -> timestamp[us, UTC]; raises on impossible dates."""
    utc = pa.timestamp("us", tz="UTC")
    try:
        return column.cast(utc)  # Arrow reads "+08:00", "+0800" and "Z" itself
    except pa.ArrowInvalid:
        pass  # lower-case "z" or a space for "T": normalise, then try again
    text = pc.replace_substring_regex(column, pattern=r"([+-]\d{2})(\d{2})$", replacement=r"\1:\2")
    text = pc.replace_substring_regex(text, pattern=SUB_MICROSECOND, replacement=r"\1")
    text = pc.replace_substring(pc.replace_substring(text, "z", "Z"), " ", "T")
    return text.cast(utc)
