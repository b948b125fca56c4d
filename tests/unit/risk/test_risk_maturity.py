"""Label maturity: the label delay measured on the lake sets the gap and, without ground truth, the test's end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pytest

from devicerisk.risk.maturity import observed_label_delay
from devicerisk.risk.training import ACTIVE, PROBE_EVERY, WARMUP, NotEnoughData, account_probes, make_split

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def lake_tables(days: int, delays_days: np.ndarray) -> tuple[pa.Table, pa.Table]:
    """One transaction per hour over ``days``; the i-th of them labelled ``delays_days[i]`` days later."""
    n = days * 24
    times = [T0 + timedelta(hours=h) for h in range(n)]
    events = pa.table(
        {
            "event_time": pa.array(times, pa.timestamp("us", tz="UTC")),
            "event_type": ["transaction"] * n,
            "transaction_id_pid": [f"t{h}" for h in range(n)],
        }
    )
    newest = times[-1]
    rows = [(f"t{h}", times[h] + timedelta(days=float(d))) for h, d in enumerate(delays_days[:n])]
    reported = [(pid, at) for pid, at in rows if at <= newest]  # a label after the newest event has not arrived
    labels = pa.table(
        {
            "subject_type": ["transaction"] * len(reported),
            "subject_id_pid": [p for p, _ in reported],
            "reported_at": pa.array([a for _, a in reported], pa.timestamp("us", tz="UTC")),
        }
    )
    return events, labels


def test_the_delay_is_a_high_percentile_measured_on_transactions_old_enough() -> None:
    delays = np.random.default_rng(5).uniform(1, 14, 40 * 24)
    events, labels = lake_tables(40, delays)
    delay = observed_label_delay(events, labels)
    assert not delay.censored and 500 < delay.measured < labels.num_rows
    assert 12.9 < delay.days < 13.8  # the 95th percentile of 1-14 days
    # all labels, recent ones included, would understate it: their long delays have not arrived yet
    arrived = delays[[int(p[1:]) for p in labels.column("subject_id_pid").to_pylist()]]
    assert np.quantile(arrived, 0.95) < delay.days - 0.1
    short_events, short_labels = lake_tables(9, delays)
    short = observed_label_delay(short_events, short_labels)
    assert short.censored and short.days < 9 and "lower bound" in short.describe()


def test_no_transaction_label_gives_no_delay() -> None:
    events, labels = lake_tables(3, np.array([]))
    delay = observed_label_delay(events, labels)
    assert delay.measured == 0 and delay.days == 0.0 and "unknown" in delay.describe()


def test_the_gap_is_at_least_the_label_delay() -> None:
    end = T0 + timedelta(days=30)
    split = make_split(T0, end, gap_days=2, test_days=7, delay_days=13.2)
    assert split.test_start == end - timedelta(days=7)
    assert split.test_start - split.train_end == timedelta(days=13.2)  # not the configured 2 days
    assert split.training_mature and split.test_mature and not split.notes
    assert make_split(T0, end, gap_days=15, test_days=7, delay_days=13.2).train_end == end - timedelta(days=22)


def test_without_ground_truth_the_test_ends_a_label_delay_before_the_newest_data() -> None:
    end = T0 + timedelta(days=40)
    split = make_split(T0, end, gap_days=2, test_days=5, delay_days=10, labels_only=True)
    assert split.end == end - timedelta(days=10) and split.newest == end
    assert split.test_start == split.end - timedelta(days=5)
    assert split.train_end == split.test_start - timedelta(days=10)
    assert split.test_mature and split.training_mature


def test_a_lake_shorter_than_the_delay_falls_back_and_says_so() -> None:
    end = T0 + timedelta(days=7)
    split = make_split(T0, end, gap_days=2, test_days=2, delay_days=10, labels_only=True)
    assert (split.train_end, split.test_start, split.end) == (end - timedelta(days=4), end - timedelta(days=2), end)
    assert not split.training_mature and not split.test_mature
    assert len(split.notes) == 2 and "does not replace a champion" in split.notes[1]
    with pytest.raises(NotEnoughData):
        make_split(T0, end, gap_days=3, test_days=3, delay_days=10)


def test_the_account_score_trains_on_probes_every_two_days_back_to_the_warm_up() -> None:
    """One probe holds only the accounts active in its week; fake accounts are closed once reported, so the
    probes reach back through training, each with a whole week of activity after the warm-up."""
    split = make_split(T0, T0 + timedelta(days=30), gap_days=2, test_days=7)
    probes = account_probes(split)
    assert probes[0] == split.train_end and len(probes) > 3
    assert all(a - b == PROBE_EVERY for a, b in pairwise(probes))
    assert probes[-1] - ACTIVE >= T0 + WARMUP > probes[-1] - PROBE_EVERY - ACTIVE  # as far back as a week fits
    short = make_split(T0, T0 + timedelta(days=6), gap_days=1, test_days=1)
    assert account_probes(short) == [short.train_end]  # a short lake: the one probe at the end of training
