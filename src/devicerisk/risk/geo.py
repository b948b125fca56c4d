"""Reference data for geography features: which country a time zone belongs to (IANA zone.tab)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import pyarrow as pa


@cache
def timezone_countries() -> pa.Table:
    """(timezone, country) pairs from the IANA ``zone.tab`` shipped with the ``tzdata`` package."""
    text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text()
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return pa.table({"tz": [r[2] for r in rows], "tz_country": [r[0] for r in rows]})
