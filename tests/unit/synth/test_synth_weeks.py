"""Every scenario over a month: present in every week (so a 7-day held-out test measures each one, and the
training weeks hold each one too), with labels that agree with the truth."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from devicerisk.synth import SynthConfig, generate
from devicerisk.synth.config import FRAUD_SCENARIOS, LOOKALIKE_TAGS

CONFIG = SynthConfig(accounts=3000, days=30, seed=11, gzip=False, fraud_rate=0.15, events_per_batch=200_000)


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result = generate(tmp_path_factory.mktemp("month"), CONFIG)
    truth = [json.loads(line) for line in result.truth_file.open()]
    labels = [json.loads(line) for path in result.label_files for line in path.open()]
    return {
        "fraud": {t["subject_id"]: t for t in truth if t["subject_type"] == "transaction"},
        "accounts": {t["subject_id"]: t for t in truth if t["subject_type"] == "account"},
        "labels": labels,
    }


def _weeks() -> list[tuple[datetime, datetime]]:
    """The month's four whole weeks from the start, and its last seven days (a held-out test's week)."""
    start, end = CONFIG.start, CONFIG.start + timedelta(days=CONFIG.days)
    week = timedelta(days=7)
    return [(start + i * week, start + (i + 1) * week) for i in range(CONFIG.days // 7)] + [(end - week, end)]


def test_every_scenario_has_fraud_in_every_week(month: dict[str, Any]) -> None:
    per_week: list[Counter[str]] = [Counter() for _ in _weeks()]
    for t in month["fraud"].values():
        when = datetime.fromisoformat(t["event_time"])
        for counts, (lo, hi) in zip(per_week, _weeks(), strict=True):
            if lo <= when < hi:
                counts[t["scenario"]] += 1
    missing = [(i, name) for i, counts in enumerate(per_week) for name in FRAUD_SCENARIOS if not counts[name]]
    assert not missing, f"(week, scenario) without a fraudulent transaction: {missing}"


def test_incidents_are_many_and_spread(month: dict[str, Any]) -> None:
    """Merchants, mules, farms and promotion rings come as several incidents, not one or two."""
    fraud, accounts = month["fraud"], month["accounts"]
    merchants = {t["subject_id"] for t in fraud.values() if t["scenario"] == "compromised_merchant"}
    assert merchants
    mules = [a for a in accounts.values() if a["scenario"] == "push_payment_scam"]
    groups = {s: {a["group"] for a in accounts.values() if a["scenario"] == s} for s in ("device_farm", "promo_abuse")}
    assert len(mules) >= 8 and len(groups["device_farm"]) >= 4 and len(groups["promo_abuse"]) >= 6
    registered = sorted(datetime.fromisoformat(a["registered_at"]) for a in mules)
    assert registered[0] < CONFIG.start + timedelta(days=7) and registered[-1] > CONFIG.start + timedelta(days=20)


def test_labels_agree_with_the_truth(month: dict[str, Any]) -> None:
    fraud, accounts = month["fraud"], month["accounts"]
    for lab in month["labels"]:
        if lab["label"] != "fraud":
            continue
        if lab["subject_type"] == "transaction":  # a fraud report names a fraud of its kind
            assert fraud[lab["subject_id"]]["scenario"] == lab["fraud_type"]
            continue
        a = accounts[lab["subject_id"]]
        if a["scenario"] is None:  # a review's mistake: a look-alike reported as a fake account
            assert lab["fraud_type"] == "fake_account" and set(a["tags"]) & set(LOOKALIKE_TAGS)
            continue
        assert lab["fraud_type"] == a["scenario"] and not a["victim_of"]
        # fraudulent throughout (no fraud_from), but a takeover only from the takeover on
        assert lab.get("fraud_from") == (a["fraud_since"] if a["scenario"] == "account_takeover" else None)
    # a fraudster's frauds are all from its fraud_since on; a victim's are done to an honest account
    for t in fraud.values():
        a = accounts[t["account_id"]]
        if a["victim_of"]:
            assert a["scenario"] is None and not a["fraud"]
        else:
            assert a["scenario"] == t["scenario"] and t["event_time"] >= a["fraud_since"]
