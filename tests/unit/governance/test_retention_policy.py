"""Retention periods as configuration (5.1.2): documented defaults, a config file, and its bad forms."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from devicerisk.contract.fields import RETENTION_CLASSES
from devicerisk.governance.retention import CONFIGURABLE, RetentionConfigError, default_policy, load_policy

DEFAULTS = {
    "landing_raw": 3,
    "operation_log": 90,
    "device_info": 180,
    "crash_perf": 30,
    "transaction": 1095,
    "score": 1095,
    "audit_log": 1095,
}


def _config(tmp_path: Path, periods: dict[str, object]) -> Path:
    lines = ["[periods]", *(f"{k} = {json.dumps(v)}" for k, v in periods.items())]
    path = tmp_path / "retention.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_clause_5_1_2_default_periods_are_the_documented_ones() -> None:
    policy = default_policy()
    assert {name: policy.days(name) for name in DEFAULTS} == DEFAULTS
    assert set(policy.periods) == {r.name for r in RETENTION_CLASSES} - {"event"}


def test_clause_5_1_2_periods_come_from_a_config_file(tmp_path: Path) -> None:
    periods: dict[str, object] = {name: 7 for name in CONFIGURABLE} | {"transaction": "law", "crash_perf": 0.5}
    policy = load_policy(_config(tmp_path, periods))
    assert policy.days("operation_log") == 7
    assert policy.days("transaction") is None  # kept as long as the law requires: purged on request only
    assert policy.cutoff_date("crash_perf", date(2026, 11, 28)) == date(2026, 11, 27)  # a part day is kept whole
    assert policy.event_type_cutoffs(date(2026, 11, 28))["transaction"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"operation_log": -1}, "negative"),
        ({"operation_log": None}, "missing"),
        ({"operation_log": "ninety"}, "number of days"),
        ({"operation_log": True}, "number of days"),
        ({"forever_logs": 3}, "unknown retention classes"),
    ],
)
def test_bad_input_retention_config_with_negative_or_missing_period_is_refused(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    periods: dict[str, object] = dict.fromkeys(CONFIGURABLE, 30)
    for name, value in change.items():
        if value is None:
            del periods[name]
        else:
            periods[name] = value
    with pytest.raises(RetentionConfigError, match=message):
        load_policy(_config(tmp_path, periods))


def test_bad_input_retention_config_file_missing_or_without_periods(tmp_path: Path) -> None:
    with pytest.raises(RetentionConfigError, match="does not exist"):
        load_policy(tmp_path / "absent.toml")
    (tmp_path / "empty.toml").write_text("title = 'x'\n")
    with pytest.raises(RetentionConfigError, match=r"\[periods\]"):
        load_policy(tmp_path / "empty.toml")


def test_an_unknown_class_never_means_keep_forever() -> None:
    with pytest.raises(RetentionConfigError):
        default_policy().days("no_such_class")


@pytest.mark.parametrize(
    ("value", "message"), [("inf", "number of days"), ("nan", "number of days"), ("1e12", "over 36500 days")]
)
def test_bad_input_retention_config_with_an_infinite_or_huge_period_is_refused(
    tmp_path: Path, value: str, message: str
) -> None:
    periods = "".join(f"{name} = {value if name == 'crash_perf' else 30}\n" for name in CONFIGURABLE)
    path = tmp_path / "retention.toml"
    path.write_text("[periods]\n" + periods)  # TOML's own inf and nan, which JSON cannot write
    with pytest.raises(RetentionConfigError, match=message):
        load_policy(path)
    assert load_policy(_config(tmp_path, dict.fromkeys(CONFIGURABLE, 36_500))).cutoff_date(
        "crash_perf", date(2026, 11, 28)
    ) == date(1926, 12, 23)  # the longest period still gives a date
