"""Fast RFC 3339 formatting of epoch milliseconds in a device's time zone.

``datetime`` and ``zoneinfo`` calls cost microseconds each; at 100k events/s we look offsets up in a
per-hour table (DST changes fall on whole UTC hours for every zone we use) and cache date strings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_2D = [f"{i:02d}" for i in range(60)]
_3D = [f"{i:03d}" for i in range(1000)]

#: Timestamp styles seen from different SDKs.
MILLIS = 0  # 2026-11-20T10:00:00.123+08:00 (native SDKs)
SECONDS = 1  # 2026-11-20T10:00:00+08:00 (older SDK versions)
JS_UTC = 2  # 2026-11-20T02:00:00.123Z (JavaScript Date.toISOString on the web)


def to_ms(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _offset_str(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"


class Clock:
    """Formats timestamps for a fixed list of time zones over a window (with a margin after it)."""

    def __init__(self, start_ms: int, hours: int, tz_names: list[str], margin_hours: int = 24 * 16) -> None:
        self.start_ms = start_ms
        self.tz_names = tz_names
        self._hours = hours + margin_hours
        # per zone, per UTC hour since start: (offset in ms, "+08:00")
        self._offsets: list[list[tuple[int, str]]] = []
        for name in tz_names:
            zone = ZoneInfo(name)
            row = []
            for h in range(self._hours):
                off = from_ms(start_ms + h * HOUR_MS).astimezone(zone).utcoffset()
                minutes = int(off.total_seconds() // 60) if off is not None else 0
                row.append((minutes * 60_000, _offset_str(minutes)))
            self._offsets.append(row)
        self._dates: dict[int, str] = {}
        self._hours_cache: dict[int, tuple[str, str, int, str]] = {}

    def tz_index(self, name: str) -> int:
        return self.tz_names.index(name)

    def offset_minutes(self, tz: int, ms: int) -> int:
        return self._lookup(tz, ms)[0] // 60_000

    def _lookup(self, tz: int, ms: int) -> tuple[int, str]:
        row = self._offsets[tz]
        h = (ms - self.start_ms) // HOUR_MS
        return row[min(max(h, 0), self._hours - 1)]

    def _date(self, day: int) -> str:
        s = self._dates.get(day)
        if s is None:
            s = self._dates[day] = from_ms(day * DAY_MS).strftime("%Y-%m-%d")
        return s

    def fmt(self, ms: int, tz: int, style: int = MILLIS) -> str:
        """``ms`` as an RFC 3339 string with an explicit offset (``Z`` only in the JavaScript style)."""
        hour, rem = divmod(ms, HOUR_MS)
        parts = self._hours_cache.get((hour << 8) | (tz << 2) | style)
        if parts is None:
            parts = self._hour_parts(hour, tz, style)
        minute, rem = divmod(rem, 60_000)
        minute += parts[2]  # zones with :30 and :45 offsets roll into the next local hour mid-way
        prefix = parts[0]
        if minute >= 60:
            prefix, minute = parts[1], minute - 60
        # table lookups: int formatting (:02d) would cost more than the rest of this function
        if style == SECONDS:
            return f"{prefix}{_2D[minute]}:{_2D[rem // 1000]}{parts[3]}"
        return f"{prefix}{_2D[minute]}:{_2D[rem // 1000]}.{_3D[rem % 1000]}{parts[3]}"

    def _hour_parts(self, hour: int, tz: int, style: int) -> tuple[str, str, int, str]:
        """Local "YYYY-MM-DDTHH:" for the local hour containing UTC ``hour`` start and the next one,
        the minutes into that local hour at the UTC hour start, and the offset suffix."""
        if len(self._hours_cache) > 100_000:
            self._hours_cache.clear()
        off_ms, suffix = (0, "Z") if style == JS_UTC else self._lookup(tz, hour * HOUR_MS)
        local_min = (hour * HOUR_MS + off_ms) // 60_000
        base = local_min - local_min % 60
        prefixes = []
        for m in (base, base + 60):
            day, minute_of_day = divmod(m, 1440)
            prefixes.append(f"{self._date(day)}T{minute_of_day // 60:02d}:")
        parts = (prefixes[0], prefixes[1], local_min - base, suffix)
        self._hours_cache[(hour << 8) | (tz << 2) | style] = parts
        return parts

    def ymd(self, ms: int) -> str:
        """The UTC date of ``ms`` as ``YYYYMMDD``."""
        return self._date(ms // DAY_MS).replace("-", "")

    def utc(self, ms: int) -> str:
        """``ms`` in UTC with seconds precision and a ``+00:00`` offset (used for labels)."""
        day, rem = divmod(ms, DAY_MS)
        h, rem = divmod(rem, HOUR_MS)
        m, rem = divmod(rem, 60_000)
        return f"{self._date(day)}T{h:02d}:{m:02d}:{rem // 1000:02d}+00:00"
