"""What an anonymising decommissioning keeps (5.1.3): aggregates of the lake that identify no one.

Two tables of fixed cells, each cell counting the distinct subjects it describes, with every cell of fewer than
``k`` subjects suppressed by the one k-anonymity rule (:mod:`devicerisk.privacy.kanon`):

- ``events_by_day``: events per day and event type (transactions excepted), and the distinct subjects (an
  event's account, else its device) behind them;
- ``transactions_by_day``: transactions per day and risk level (``unscored`` when no model scored them), their
  distinct accounts, the transactions a fraud label marks (the contract's label semantics) and the fraud rate.

No column holds a pseudonym or any identifier. The two tables partition the events (transactions only in the
second) and publish no total, subtotal or margin, so no published number minus others gives a suppressed cell
(the argument of :mod:`devicerisk.analytics.share`). Transactions without an account describe no account and
are left out, as in the partners' exports.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from devicerisk import engine
from devicerisk.config import Settings
from devicerisk.contract.fields import DEVICE_KEY_COLUMNS, DEVICE_KEY_SQL
from devicerisk.privacy.kanon import suppress
from devicerisk.risk.labels import fraud_marks, read_labels
from devicerisk.store import lake, lake_scan
from devicerisk.store.scores import TRANSACTION_SCORES

_EVENTS = f"""
SELECT event_date, event_type, count(DISTINCT coalesce(account_id_pid, {DEVICE_KEY_SQL})) AS subjects,
       count(*) AS events
FROM events WHERE event_type <> 'transaction' GROUP BY ALL ORDER BY ALL
"""

_TRANSACTIONS = """
SELECT e.event_date, coalesce(s.level, 'unscored') AS level, e.transaction_id_pid AS subject,
       e.account_id_pid AS acct, epoch_us(e.event_time) AS t
FROM events e LEFT JOIN (SELECT event_id, arg_max(level, scored_at) AS level FROM scores GROUP BY event_id) s
  ON s.event_id = e.event_id
WHERE e.event_type = 'transaction' AND e.account_id_pid IS NOT NULL
"""

_TRANSACTION_CELLS = """
SELECT event_date, level, count(DISTINCT acct) AS accounts, count(*) AS transactions,
       sum(fraud)::BIGINT AS fraud_transactions, round(sum(fraud) / count(*), 4) AS fraud_rate
FROM marked GROUP BY ALL ORDER BY ALL
"""

_EVENT_COLUMNS = ["event_date", "event_type", "event_id", "event_time", "account_id_pid", "transaction_id_pid"]
_NO_SCORES = pa.table(
    {
        "event_id": pa.array([], pa.string()),
        "level": pa.array([], pa.string()),
        "scored_at": pa.array([], pa.timestamp("us", tz="UTC")),
    }
)


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One anonymised table: the published cells, and how many cells were suppressed."""

    name: str
    subjects: str  # the column that counts a cell's distinct subjects
    cells: pa.Table
    suppressed: int


def _scores(settings: Settings) -> pa.Table:
    data = lake.dataset(settings.lake_dir, TRANSACTION_SCORES)
    return _NO_SCORES if data is None else data.to_table(columns=["event_id", "level", "scored_at"])


def build(settings: Settings, k: int) -> list[Aggregate]:
    """The k-anonymous aggregates of the lake of ``settings`` (none when the lake holds no events)."""
    events = lake_scan.snapshot(settings.lake_dir, lake.EVENTS)
    if events is None:
        return []
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        events.register(con, "events", [*_EVENT_COLUMNS, *DEVICE_KEY_COLUMNS])
        con.register("scores", _scores(settings))
        by_type = con.sql(_EVENTS).to_arrow_table()
        rows = con.sql(_TRANSACTIONS).to_arrow_table()
    finally:
        con.close()
    fraud = fraud_marks(rows, read_labels(settings.lake_dir), None)
    with engine.registered(marked=rows.append_column("fraud", pa.array(fraud, pa.int64()))) as reg:
        by_level = reg.sql(_TRANSACTION_CELLS).to_arrow_table()
    out = []
    for name, subjects, cells in (
        ("events_by_day", "subjects", by_type),
        ("transactions_by_day", "accounts", by_level),
    ):
        kept, suppressed = suppress(cells, subjects, k)
        out.append(Aggregate(name, subjects, kept, suppressed))
    return out
