"""Point-in-time features: windows, no leakage from the future or from labels not yet reported, empty windows."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from devicerisk.risk import features as F
from factories import ACCT, CP, DEV, NET, OTHER, T0, events, features_of, labels, registered, txn


def test_velocity_windows_count_only_the_past() -> None:
    history = [
        txn(T0 - timedelta(minutes=30)),
        txn(T0 - timedelta(hours=2), status="failed"),
        txn(T0 - timedelta(hours=30)),
        txn(T0 - timedelta(days=8)),
    ]
    future = [txn(T0 + timedelta(minutes=1)), txn(T0 + timedelta(hours=1), status="failed")]
    f = features_of([*history, txn(T0), *future])
    assert (f["acct_txn_1h"], f["acct_txn_24h"], f["acct_txn_7d"]) == (1, 2, 3)
    assert (f["acct_failed_pay_1h"], f["acct_failed_pay_24h"]) == (0, 1)
    assert f["dev_txn_24h"] == 2


def test_an_event_at_the_same_instant_is_not_history() -> None:
    rows = [txn(T0, status="failed", event_id="same-time"), txn(T0)]
    out = F.transaction_features(events(rows), None, T0, T0 + timedelta(seconds=1)).to_pylist()
    assert [(f["acct_txn_1h"], f["acct_failed_pay_1h"]) for f in out] == [(0, 0), (0, 0)]


def test_a_label_counts_only_once_reported() -> None:
    """Moving a label's reported time across t switches the feature: the label is never seen early."""
    earlier = txn(T0 - timedelta(days=3))
    rows = [earlier, txn(T0)]
    subject = earlier["transaction_id_pid"]
    late = features_of(rows, labels([("transaction", subject, T0 + timedelta(minutes=5))]))
    on_time = features_of(rows, labels([("transaction", subject, T0 - timedelta(minutes=5))]))
    exactly = features_of(rows, labels([("transaction", subject, T0)]))
    assert late["account_fraud_reports"] == 0 and late["device_fraud_reports"] == 0
    assert exactly["account_fraud_reports"] == 0  # strictly before t
    assert on_time["account_fraud_reports"] == 1 and on_time["device_fraud_reports"] == 1


def test_device_graph_counts_accounts_seen_before() -> None:
    others = [txn(T0 - timedelta(hours=h), acct=c * 32) for h, c in ((1, "c"), (3, "e"), (30, "f"))]
    f = features_of([*others, txn(T0)])
    assert f["accounts_on_device_24h"] == 2  # c and e; f was seen 30 h before
    assert f["accounts_on_device_31d"] == 3
    assert f["device_age_for_account_h"] == 0  # this account's first use of the device


def test_amount_against_the_accounts_own_median() -> None:
    history = [txn(T0 - timedelta(days=d), amount=a) for d, a in ((1, 10.0), (2, 20.0), (3, 30.0))]
    f = features_of([*history, txn(T0, amount=120.0)])
    assert f["amount_to_median"] == pytest.approx(6.0)
    assert f["amount"] == 120.0  # the amount itself: a large payment is a risk whatever the account's habits


def test_empty_windows_are_defined() -> None:
    f = features_of([txn(T0, network_ip_prefix=NET, counterparty_pid=CP)])  # every entity: every count is defined
    counts = [f.name for f in F.FEATURES if f.kind == "count" and f.name != "app_versions_behind"]
    assert len(counts) > 15 and {name: f[name] for name in counts} == dict.fromkeys(counts, 0), f
    assert f["amount_to_median"] is None and f["hours_since_registration"] is None
    assert not any(isinstance(v, float) and math.isnan(v) for v in f.values())


def test_no_events_give_no_rows() -> None:
    assert F.transaction_features(events([]), None, T0, T0 + timedelta(days=1)).num_rows == 0
    assert F.account_features(events([]), None, T0, T0 + timedelta(days=1)).num_rows == 0


def test_account_probe_sees_history_before_as_of_only() -> None:
    rows = [txn(T0 - timedelta(hours=2)), txn(T0 - timedelta(minutes=10)), txn(T0 + timedelta(minutes=10))]
    out = F.account_features(events(rows), None, T0 - timedelta(days=1), T0).to_pylist()
    assert [(r["qid"], r["acct_txn_24h"]) for r in out] == [(ACCT, 2)]


def test_novelty_is_unknown_without_a_device_or_network() -> None:
    """No device (or network) on the transaction: its age for the account is NULL, not 0 h (a brand-new pair)."""
    earlier = txn(T0 - timedelta(days=3), network_ip_prefix=NET)
    unknown = features_of([earlier, txn(T0, device_android_id_pid=None)])
    assert unknown["device_age_for_account_h"] is None and unknown["network_age_for_account_h"] is None
    known = features_of([earlier, txn(T0, network_ip_prefix=NET)])
    assert known["device_age_for_account_h"] == known["network_age_for_account_h"] == 72
    new = features_of([earlier, txn(T0, device_android_id_pid="e" * 32, network_ip_prefix="10.9.9.0/24")])
    assert new["device_age_for_account_h"] == new["network_age_for_account_h"] == 0


def test_training_and_scoring_see_the_same_history() -> None:
    """Features of a row from the whole lake (training) equal those from the 31 days a scoring run loads.

    The account registered, met its device, network and SIM country and was reported 40 days before
    the row: beyond the history window, so neither path may use it.
    """
    old = T0 - timedelta(days=40)
    history = [
        registered(old, network_ip_prefix=NET, device_imsi_country="DE"),
        txn(old + timedelta(hours=1), network_ip_prefix=NET, device_imsi_country="DE", counterparty_pid="p" * 32),
        txn(old + timedelta(hours=2), acct=OTHER, network_ip_prefix=NET),
        {
            "event_id": "info",
            "event_type": "device_info",
            "event_time": old,
            "device_android_id_pid": DEV,
            "rooted": True,
            "timezone": "Europe/Berlin",
            "language": "de-DE",
            "hardware_emulator": True,
        },
        txn(T0 - timedelta(days=20), network_ip_prefix=NET, device_imsi_country="DE"),
        txn(T0 - timedelta(days=2), acct=OTHER, network_ip_prefix=NET),
    ]
    row = txn(T0, network_ip_prefix=NET, device_imsi_country="DE", counterparty_pid="p" * 32)
    lab = labels(
        [
            ("transaction", history[1]["transaction_id_pid"], old + timedelta(days=3)),
            ("transaction", history[2]["transaction_id_pid"], old + timedelta(days=3)),
        ]
    )
    whole = features_of([*history, row], lab)
    loaded_from = T0 - F.HISTORY - timedelta(days=1)  # what a scoring run of this row loads (a day early at most)
    scored = features_of([r for r in [*history, row] if r["event_time"] >= loaded_from], lab)
    assert whole == scored
    assert whole["device_age_for_account_h"] == 20 * 24  # first seen 20 days before within the window
    assert whole["devices_of_account_31d"] == 1 and whole["accounts_on_device_31d"] == 2
    assert whole["hours_since_registration"] is None and whole["counterparty_fraud_reports"] == 0


def test_the_newest_locale_counts_even_without_a_country() -> None:
    """A device last reporting a time zone outside zone.tab and a language without a region: the newest locale
    has no country, so the mismatches are unknown, not judged on the older German locale."""
    info = {"event_type": "device_info", "device_android_id_pid": DEV}
    day = timedelta(days=1)
    rows = [
        {**info, "event_id": "i1", "event_time": T0 - 2 * day, "timezone": "Europe/Berlin", "language": "de-DE"},
        {**info, "event_id": "i2", "event_time": T0 - day, "timezone": "Mars/Olympus", "language": "en"},
        txn(T0, device_imsi_country="FR"),
    ]
    f = features_of(rows)
    assert f["sim_tz_mismatch"] is None and f["sim_lang_mismatch"] is None and f["tz_lang_mismatch"] is None
    older = features_of(rows[:1] + rows[2:])
    assert older["sim_tz_mismatch"] == older["sim_lang_mismatch"] == 1 and older["tz_lang_mismatch"] == 0
