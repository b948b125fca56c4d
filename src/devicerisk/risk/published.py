"""What the score runs publish for lookups: the serving snapshots' rows, for a documented serving period.

- ``transaction_risk``: every transaction score of the ``days`` before the newest scored transaction;

Each is published in the order a lookup reads it (by account; transactions newest first; devices by key), so
the lookup service loads it without sorting; erasures and purges keep that order (they only remove rows).
- ``account_risk``: the latest score of every account scored within the ``days`` before the newest account run
  (each run is merged into the published snapshot: the newest ``as_of`` wins per account), with the account's
  current phone pseudonym (its latest registered number), so a phone number finds the accounts that hold it;
- ``device_risk``: one row per (device, account) edge with the device's signals (:mod:`devicerisk.risk.devices`).

``days`` is ``Settings.serving_days`` (``DEVICERISK_SERVING_DAYS``, 30 by default). The store module
(:mod:`devicerisk.store.serving`) writes them atomically; these functions only build the tables.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.contract.fields import FIELDS
from devicerisk.risk import devices
from devicerisk.store import lake_scan, scores
from devicerisk.store.rows import ACCOUNT_COLUMN

#: The lake column of an account's phone pseudonym (the contract's ``payload.phone``).
PHONE_COLUMN = next(f"{f.column}_pid" for f in FIELDS if f.path == "payload.phone")


def recent_transactions(lake_dir: Path, days: int) -> pa.Table | None:
    """The lake's transaction scores of the last ``days`` before the newest one (None if there is none)."""
    recent = scores.read(lake_dir, scores.TRANSACTION_SCORES)
    if recent is None or recent.num_rows == 0:
        return None
    cut = pc.max(recent.column("event_time")).as_py() - timedelta(days=days)
    kept = recent.filter(pc.greater(recent.column("event_time"), pa.scalar(cut)))
    return kept.sort_by([(ACCOUNT_COLUMN, "ascending"), ("event_time", "descending")])  # as lookups read it


def current_phones(events: lake_scan.Snapshot, accounts: pa.Array) -> pa.Table:
    """``account_id_pid`` -> ``phone_pid``: each of ``accounts``' latest registered phone pseudonym (if any)."""
    if PHONE_COLUMN not in events.dataset.schema.names:  # a lake written without account events' fields
        return pa.table({ACCOUNT_COLUMN: pa.array([], pa.string()), PHONE_COLUMN: pa.array([], pa.string())})
    con = duckdb.connect(":memory:")
    try:
        events.register(con, "events", ["event_time", ACCOUNT_COLUMN, PHONE_COLUMN])
        con.register("wanted", pa.table({ACCOUNT_COLUMN: accounts}))
        return con.sql(
            f"""SELECT e.{ACCOUNT_COLUMN}, arg_max(e.{PHONE_COLUMN}, e.event_time) AS {PHONE_COLUMN}
                FROM events e SEMI JOIN wanted w ON w.{ACCOUNT_COLUMN} = e.{ACCOUNT_COLUMN}
                WHERE e.{PHONE_COLUMN} IS NOT NULL GROUP BY e.{ACCOUNT_COLUMN}"""
        ).to_arrow_table()
    finally:
        con.close()


def with_phones(run: pa.Table, events: lake_scan.Snapshot) -> pa.Table:
    """An account run's rows with each account's current phone pseudonym (null when it registered none)."""
    phones = current_phones(events, run.column(ACCOUNT_COLUMN))
    at = pc.index_in(run.column(ACCOUNT_COLUMN), value_set=phones.column(ACCOUNT_COLUMN))
    return run.append_column(pa.field(PHONE_COLUMN, pa.string()), phones.column(PHONE_COLUMN).take(at))


def merged_accounts(published: pa.Table | None, run: pa.Table, days: int) -> pa.Table:
    """The account snapshot after ``run``: per account the row with the newest ``as_of`` (a tie keeps the later
    ``scored_at``), of accounts scored within ``days`` before the newest ``as_of``."""
    both = run if published is None else pa.concat_tables([published, run], promote_options="default")
    con = duckdb.connect(":memory:")
    try:
        con.register("accounts", both)
        return (
            con.sql(
                f"""SELECT * FROM accounts
                    WHERE as_of > (SELECT max(as_of) FROM accounts) - to_days($days)
                    QUALIFY row_number() OVER (PARTITION BY {ACCOUNT_COLUMN} ORDER BY as_of DESC, scored_at DESC) = 1
                    ORDER BY {ACCOUNT_COLUMN}""",
                params={"days": days},
            )
            .to_arrow_table()
            .cast(both.schema)
        )
    finally:
        con.close()


def device_risk(events: lake_scan.Snapshot, as_of: datetime, days: int) -> pa.Table:
    """The device-risk edges of ``events`` as of ``as_of``, for accounts seen on a device within ``days``."""
    return devices.device_risk(events, as_of, as_of - timedelta(days=days))
