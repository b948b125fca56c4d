"""The C feature engine against the SQL definition, on a generated, ingested lake and on edge cases."""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import ingest_batches
from devicerisk.ingest.runtime import ingest_context
from devicerisk.risk import features as F
from devicerisk.risk import signals, windows
from devicerisk.risk.labels import ingest_labels, read_labels
from devicerisk.risk.service import load_events
from devicerisk.risk.training import matrix
from devicerisk.synth import SynthConfig, generate
from factories import DEV, T0, events, features_of, labels, registered, txn


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, pa.Table]:
    """A generated 12-day lake with fraud and labels: its feature columns and its labels."""
    root = tmp_path_factory.mktemp("windows")
    s = Settings(
        mode="production",
        data_dir=root / "data",
        pseudonym_key=secrets.token_hex(32),
        quarantine_key=secrets.token_hex(32),
        secrets_dir=root / "secrets",
    )
    result = generate(
        s.landing_dir, SynthConfig(accounts=300, days=12, seed=31, events_per_batch=20_000, fraud_rate=0.12, gzip=False)
    )
    ctx = ingest_context(s)
    list(ingest_batches(result.batches, ctx))
    list(ingest_labels(ctx, s.landing_dir))
    return load_events(s.lake_dir), read_labels(s.lake_dir)


def same(sql: pa.Table, rows: pa.Table, X: np.ndarray) -> None:
    """The engine's rows and matrix equal the SQL's feature table, row by row (by event id)."""
    assert sorted(rows.column("qid").to_pylist()) == sorted(sql.column("qid").to_pylist())
    position = {q: i for i, q in enumerate(rows.column("qid").to_pylist())}
    mine = X[[position[q] for q in sql.column("qid").to_pylist()]]
    theirs = matrix(sql)
    for j, name in enumerate(F.FEATURE_NAMES):
        a, b = theirs[:, j], mine[:, j]
        agree = (np.isnan(a) & np.isnan(b)) | np.isclose(a, b, rtol=1e-12, atol=1e-9)
        assert agree.all(), f"{name}: {int((~agree).sum())} rows differ"


def bounds(events: pa.Table) -> tuple:
    t = events.column("event_time")
    return pc.min(t).as_py(), pc.max(t).as_py() + timedelta(microseconds=1)


def test_engine_equals_sql_on_a_generated_lake(lake: tuple[pa.Table, pa.Table]) -> None:
    events, labs = lake
    start, end = bounds(events)
    sql = F.transaction_features(events, labs, start, end)
    rows, X = windows.transaction_features(signals.signals(events), labs, start, end)
    assert sql.num_rows > 1000 and pc.sum(pc.greater(sql.column("account_fraud_reports"), 0)).as_py() > 0
    same(sql, rows, X)


def test_engine_equals_sql_for_the_newest_days_only(lake: tuple[pa.Table, pa.Table]) -> None:
    """A window that starts mid-lake: the history before it counts, the sightings bounds fall alike."""
    events, labs = lake
    _, end = bounds(events)
    start = end - timedelta(days=2, minutes=17)
    sql = F.transaction_features(events, labs, start, end)
    rows, X = windows.transaction_features(signals.signals(events), labs, start, end)
    same(sql, rows, X)


def test_signals_built_batch_by_batch_give_the_same_features(lake: tuple[pa.Table, pa.Table]) -> None:
    """Each batch keeps the first row of every bucket it holds, so the union keeps every bucket's first row,
    even when batches interleave in time (late events)."""
    events, labs = lake
    start, end = bounds(events)
    odd = pc.equal(pc.bit_wise_and(pa.array(np.arange(events.num_rows)), 1), 1)
    parts = [signals.signals(events.filter(odd)), signals.signals(events.filter(pc.invert(odd)))]
    whole = signals.signals(events)
    assert sum(p.num_rows for p in parts) >= whole.num_rows  # each part keeps its own firsts
    assert whole.num_rows < events.num_rows  # rows no feature can see are dropped
    rows, X = windows.transaction_features(pa.concat_tables(parts), labs, start, end)
    same(F.transaction_features(events, labs, start, end), rows, X)


def test_a_report_after_its_link_left_the_history_never_counts() -> None:
    """A transaction 40 days back, reported 5 days ago: its link left the 31-day history (9 days ago) before the
    report came, so the report counts nowhere; a transaction 7 days ago used to see it count -1."""
    old = txn(T0 - timedelta(days=40), counterparty_pid="c" * 32)
    lab = labels([("transaction", old["transaction_id_pid"], T0 - timedelta(days=5))])
    at = T0 - timedelta(days=7)
    f = features_of([old, txn(at, counterparty_pid="c" * 32)], lab, at=at)
    assert (f["device_fraud_reports"], f["account_fraud_reports"], f["counterparty_fraud_reports"]) == (0, 0, 0)


def test_windows_longer_than_the_history_expire() -> None:
    """Sightings, registration and password changes older than 31 days, amounts older than 30, fall out."""
    old = T0 - timedelta(days=32)
    rows = [
        registered(old, network_ip_prefix="10.0.0.0/24"),
        txn(old + timedelta(hours=1), amount=5.0),
        txn(T0 - timedelta(days=1), amount=40.0, device_android_id_pid="f" * 32),
        txn(T0, amount=80.0),
    ]
    f = features_of(rows)
    assert f["hours_since_registration"] is None and f["amount_to_median"] == pytest.approx(2.0)
    assert f["device_age_for_account_h"] == 0  # first seen > 31 d ago: new again within the history
    assert f["devices_of_account_31d"] == 1


def test_unsorted_signals_are_put_in_time_order() -> None:
    rows = [txn(T0 - timedelta(hours=h)) for h in (3, 1, 2)] + [txn(T0)]
    sig = signals.signals(events(rows))
    shuffled = sig.take(pa.array([3, 0, 2, 1]))
    _, X = windows.transaction_features(shuffled, None, T0, T0 + timedelta(seconds=1))
    assert X[0, F.FEATURE_NAMES.index("acct_txn_24h")] == 3
    assert math.isnan(X[0, F.FEATURE_NAMES.index("hours_since_registration")])  # no registration seen


def test_the_engine_fills_exactly_the_model_features() -> None:
    assert windows.available()  # built by `make install`; scoring falls back to the SQL without it
    assert len(windows.ENGINE_COLUMNS) == 22


def test_signals_are_numbers_with_text_on_transactions_only(lake: tuple[pa.Table, pa.Table]) -> None:
    """Signals hold hashes and codes; text only on transaction rows (event id and pseudonyms for the scores)."""
    events, _ = lake
    sig = signals.signals(events)
    text = [f.name for f in sig.schema if pa.types.is_string(f.type)]
    assert text == ["event_id", "account_id_pid", "transaction_id_pid"]
    is_txn = pc.equal(sig.column("etype"), signals.ETYPES["transaction"])
    assert pc.all(pc.is_null(sig.column("event_id").filter(pc.invert(is_txn)))).as_py()


def test_dropping_the_rows_no_feature_sees_changes_nothing(
    lake: tuple[pa.Table, pa.Table], monkeypatch: pytest.MonkeyPatch
) -> None:
    events, labs = lake
    start, end = bounds(events)
    reduced = signals.signals(events)
    monkeypatch.setattr(signals, "_windows", None)  # as without the extension: every row kept
    every = signals.signals(events)
    assert every.num_rows == events.num_rows > 2 * reduced.num_rows
    rows_a, X_a = windows.transaction_features(reduced, labs, start, end)
    rows_b, X_b = windows.transaction_features(every, labs, start, end)
    assert rows_a.column("qid").to_pylist() == rows_b.column("qid").to_pylist()
    assert np.array_equal(X_a, X_b, equal_nan=True)


def test_a_clock_before_1970_is_just_an_old_event() -> None:
    """A device clock reset to the epoch in a positive-offset zone gives a time before 1970: signals keep it
    as an old row (it is no error), and the features of a later transaction are as the SQL's."""
    reset = {
        "event_id": "reset",
        "event_type": "operation",
        "event_time": datetime(1969, 12, 31, 16, tzinfo=UTC),
        "account_id_pid": "a" * 32,
        "device_android_id_pid": DEV,
    }
    sig = signals.signals(events([reset, txn(T0)]))
    assert sig.num_rows == 2 and sig.column("t")[0].as_py() < 0
    assert features_of([reset, txn(T0)])["devices_of_account_31d"] == 0


def test_a_log_with_an_overlapping_tail_is_put_in_time_order_like_a_full_sort() -> None:
    rng = np.random.default_rng(4)
    old = np.sort(rng.integers(0, 1000, size=300))
    late = np.sort(rng.integers(900, 1100, size=60))  # a refresh whose rows start before the last ones
    sig = pa.table({"t": np.r_[old, late], "row": np.arange(360)})
    want = sig.take(pa.array(np.argsort(sig.column("t").to_numpy(), kind="stable")))
    assert windows.in_time_order(sig).equals(want)
    assert windows.in_time_order(want) is want  # in order: kept as is
