"""Label maturity: how long feedback labels take to arrive, measured on the lake.

A fraud report arrives days after the transaction it describes. Until then the transaction looks
legitimate, so a row younger than the label delay is not yet a reliable negative. Training therefore
keeps a gap at least this long between its last row and the label cut, and a test judged on feedback
labels alone ends at least this long before the newest data (see ``training.make_split``).

The delay is measured on transaction labels (``reported_at`` minus the labelled transaction's
``event_time``); an account label has no single event time. Recent transactions may still have
reports pending, which would bias the figure low, so only transactions older than the longest delay
seen are measured. A lake spanning less than twice that longest delay cannot tell whether longer ones
exist: its figure is marked as a lower bound (``censored``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from devicerisk import engine

#: The share of labels that must have arrived for a row to count as mature.
DELAY_QUANTILE = 0.95
_DAY_US = 86_400_000_000


@dataclass(frozen=True, slots=True)
class LabelDelay:
    """The observed label delay: ``quantile`` of ``measured`` transaction labels took ``days`` or less."""

    days: float
    quantile: float
    measured: int
    censored: bool  # True: every measured transaction is younger than the longest delay (a lower bound)

    def describe(self) -> str:
        if self.measured == 0:
            return "no transaction label joins an event yet: label delay unknown"
        bound = " (may be a lower bound: the lake spans less than twice the longest delay)" if self.censored else ""
        return (
            f"observed label delay {self.days:.1f} days ({self.quantile:.0%} of {self.measured:,} transaction "
            f"labels arrived within it){bound}"
        )


NO_DELAY = LabelDelay(0.0, DELAY_QUANTILE, 0, True)

_DELAY_SQL = """
WITH d AS (
    SELECT min(epoch_us(e.event_time)) AS t, min(epoch_us(l.reported_at)) - min(epoch_us(e.event_time)) AS us
    FROM labels l JOIN events e ON e.transaction_id_pid = l.subject_id_pid
    WHERE l.subject_type = 'transaction' AND e.event_type = 'transaction'
    GROUP BY l.subject_id_pid
),
s AS (SELECT max(epoch_us(event_time)) AS newest, min(epoch_us(event_time)) AS oldest FROM events),
m AS (SELECT s.newest - max(us) AS old_before, s.newest - s.oldest < 2 * max(us) AS censored FROM d, s
      WHERE us >= 0 GROUP BY s.newest, s.oldest)
SELECT quantile_cont(us, $q) FILTER (WHERE t <= old_before), count(*) FILTER (WHERE t <= old_before),
       quantile_cont(us, $q), count(*), any_value(censored)
FROM d, m WHERE us >= 0
"""


def observed_label_delay(events: pa.Table, labels: pa.Table, quantile: float = DELAY_QUANTILE) -> LabelDelay:
    """The ``quantile`` of (reported_at - event_time) over transaction labels joined to ``events``."""
    tables = {
        "events": events.select(["event_time", "event_type", "transaction_id_pid"]),
        "labels": labels.select(["subject_type", "subject_id_pid", "reported_at"]),
    }
    with engine.registered(**tables) as con:
        old_q, old_n, all_q, all_n, censored = con.execute(_DELAY_SQL, {"q": quantile}).fetchall()[0]
    if old_n:
        return LabelDelay(float(old_q) / _DAY_US, quantile, int(old_n), bool(censored))
    if all_n:
        return LabelDelay(float(all_q) / _DAY_US, quantile, int(all_n), True)
    return NO_DELAY
