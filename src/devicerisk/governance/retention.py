"""Retention policy as configuration (5.1.2): one period per retention class of the data contract.

The defaults are the contract's (``RETENTION_CLASSES``). A TOML file named by
``DEVICERISK_RETENTION_CONFIG`` replaces them; it must give every class a period, so that no class
falls back to a default by omission:

    [periods]            # days
    landing_raw = 3
    operation_log = 90
    ...

A negative, missing or non-numeric period, or an unknown class, is a :class:`RetentionConfigError`.
A period of ``"law"`` keeps data as long as the law requires: it is purged only on request.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from devicerisk.contract.fields import EVENT_TYPES, RETENTION_CLASSES

#: Classes that only name "the class of the event's type"; they have no period of their own.
_DERIVED = frozenset(r.name for r in RETENTION_CLASSES if r.name == "event")
CONFIGURABLE = tuple(r.name for r in RETENTION_CLASSES if r.name not in _DERIVED)
KEEP_AS_LAW_REQUIRES = "law"

#: The retention class of each lake table that is not per-event, and of the snapshot stores.
TABLE_CLASSES: dict[str, str] = {
    "labels": "label",
    "scores": "score",
    "transaction_scores": "score",
    "account_scores": "score",
    "features": "model_snapshot",
}
SERVING_CLASS = "score"
MODELS_CLASS = "model_snapshot"
#: Columns that date a row, in order of preference, for tables and snapshots that are not per-event.
TIME_COLUMNS = ("event_date", "event_time", "scored_at", "reported_at", "created_at", "as_of", "snapshot_date")


#: The longest period in days (100 years): beyond it a cutoff date falls before year 1 and cannot be computed.
MAX_DAYS = 36_500


class RetentionConfigError(ValueError):
    """The retention configuration is unusable: a period is missing, negative or not a number."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days to keep each retention class (``None``: as long as the law requires)."""

    periods: Mapping[str, float | None]

    def days(self, retention_class: str) -> float | None:
        """The period of ``retention_class``; unknown classes are an error, never "keep forever"."""
        try:
            return self.periods[retention_class]
        except KeyError:
            raise RetentionConfigError(f"no retention period for class {retention_class!r}") from None

    def cutoff(self, retention_class: str, now: datetime) -> datetime | None:
        """Data of ``retention_class`` dated before this instant has expired (``None``: never)."""
        days = self.days(retention_class)
        return None if days is None else now - timedelta(days=days)

    def cutoff_date(self, retention_class: str, today: date) -> date | None:
        """Rows dated before this day have expired; a partial day is kept whole (never purged early)."""
        days = self.days(retention_class)
        return None if days is None else today - timedelta(days=math.ceil(days))

    def event_type_cutoffs(self, today: date) -> dict[str, date | None]:
        """The cutoff date of each event type, through its retention class."""
        return {e.name: self.cutoff_date(e.retention, today) for e in EVENT_TYPES}


def _period(name: str, value: object) -> float | None:
    if value == KEEP_AS_LAW_REQUIRES:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RetentionConfigError(f'retention period of {name!r} must be a number of days or "law", not {value!r}')
    if value < 0:
        raise RetentionConfigError(f"retention period of {name!r} is negative ({value} days)")
    if value > MAX_DAYS:  # a cutoff must stay a date: longer periods are "law"
        raise RetentionConfigError(f'retention period of {name!r} is over {MAX_DAYS} days; use "law" to keep')
    return float(value)


def parse_periods(periods: Mapping[str, object]) -> RetentionPolicy:
    """Validate a complete mapping of class -> days; every configurable class must be present."""
    unknown = sorted(set(periods) - set(CONFIGURABLE))
    if unknown:
        known = ", ".join(CONFIGURABLE)
        raise RetentionConfigError(f"unknown retention classes: {', '.join(unknown)} (known: {known})")
    given = {name: _period(name, value) for name, value in periods.items()}  # bad values first: the clearer error
    missing = [name for name in CONFIGURABLE if name not in periods]
    if missing:
        raise RetentionConfigError(f"retention period missing for: {', '.join(missing)}")
    return RetentionPolicy({name: given[name] for name in CONFIGURABLE})


def default_policy() -> RetentionPolicy:
    """The contract's documented defaults."""
    return RetentionPolicy({r.name: r.default_days for r in RETENTION_CLASSES if r.name in CONFIGURABLE})


def load_policy(config_file: Path | None) -> RetentionPolicy:
    """The policy from ``config_file`` (TOML, a ``[periods]`` table), or the defaults when there is none."""
    if config_file is None:
        return default_policy()
    try:
        document = tomllib.loads(config_file.read_text())
    except FileNotFoundError:
        raise RetentionConfigError(f"retention config file does not exist: {config_file}") from None
    except tomllib.TOMLDecodeError as err:
        raise RetentionConfigError(f"retention config file is not valid TOML: {err}") from None
    periods = document.get("periods")
    if not isinstance(periods, dict):
        raise RetentionConfigError("retention config file has no [periods] table")
    return parse_periods(periods)


def class_of_table(table: str) -> str | None:
    """The retention class of a lake table that is not per-event (``None``: unclassified)."""
    return TABLE_CLASSES.get(table)
