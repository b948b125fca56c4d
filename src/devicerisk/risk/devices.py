"""Device risk for lookups: each device (the contract's device key), the accounts seen on it and its
device-graph signals, as of one time.

The aggregation, over the lake's ``events`` (every event before ``as_of``; the lake's retention bounds how far
back that reaches):

- a device is named by the contract's device key (``DEVICE_KEY_SQL``: the first of ``DEVICE_KEY_COLUMNS`` an
  event carries); events with none of them belong to no device;
- ``accounts_24h`` / ``accounts_31d``: distinct accounts with an event on the device in the 24 hours / 31 days
  before ``as_of`` (exact counts over events, unlike the features' hourly sightings);
- ``emulator``, ``rooted``, ``root_app``, ``hook_app``: whether any event of the device ever said so
  (:data:`DEVICE_FLAGS`, the same definitions as the analysts' ``device_scores`` view);
- ``first_seen`` / ``last_seen``: the device's first and last event;
- ``device_ids``: every identifier pseudonym the device's events carried in ``DEVICE_KEY_COLUMNS`` (sorted), so
  a device can be found by any of them (an iOS device keyed by its IDFV by its IDFA), not only by its key;
- per account seen on the device within the serving period (``since``): its events on the device, its first
  and last event there (``account_first_seen``, ``account_last_seen``).

It is stored as one row per (device, account) edge with the device-level signals repeated beside it: erasing an
account removes its edges (the snapshot's rows carry ``account_id_pid``), and a device whose last account was
erased is gone with it. Devices seen on no account, or on none within the period, have no row. The
account's score is not copied here: the lookup reads it from the account snapshot, the one place it lives.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa

from devicerisk.contract.fields import DEVICE_KEY_COLUMNS, DEVICE_KEY_SQL
from devicerisk.store import lake_scan

#: Device environment flags as SQL aggregates over a device's events: whether any event said so.
DEVICE_FLAGS: dict[str, str] = {
    "emulator": "coalesce(bool_or(hardware_emulator), false) OR coalesce(bool_or(device_model_emulator), false)",
    "rooted": "coalesce(bool_or(rooted), false)",
    "root_app": "coalesce(bool_or(installed_root_app OR running_root_app), false)",
    "hook_app": "coalesce(bool_or(installed_hook_app OR running_hook_app), false)",
}

#: Lake columns the flags read.
FLAG_COLUMNS = (
    "hardware_emulator",
    "device_model_emulator",
    "rooted",
    "installed_root_app",
    "running_root_app",
    "installed_hook_app",
    "running_hook_app",
)

#: Lake columns the device aggregation reads.
DEVICE_COLUMNS = ("event_time", "account_id_pid", *DEVICE_KEY_COLUMNS, *FLAG_COLUMNS)


def flags_sql() -> str:
    """The flags as a SELECT list (``expr AS name, ...``)."""
    return ", ".join(f"{expr} AS {name}" for name, expr in DEVICE_FLAGS.items())


_ALIASES = f"list_sort(list_distinct(flatten(list([{', '.join(DEVICE_KEY_COLUMNS)}])))) AS device_ids"

DEVICE_RISK = f"""
WITH dev AS (
    SELECT {DEVICE_KEY_SQL} AS device_key, * FROM events WHERE {DEVICE_KEY_SQL} IS NOT NULL AND event_time < $as_of
),
env AS (
    SELECT device_key,
           count(DISTINCT account_id_pid) FILTER (WHERE event_time >= $as_of - INTERVAL 24 HOUR) AS accounts_24h,
           count(DISTINCT account_id_pid) FILTER (WHERE event_time >= $as_of - INTERVAL 31 DAY) AS accounts_31d,
           {flags_sql()},
           min(event_time) AS first_seen, max(event_time) AS last_seen,
           {_ALIASES}
    FROM dev GROUP BY device_key
),
edges AS (
    SELECT device_key, account_id_pid, count(*) AS account_events,
           min(event_time) AS account_first_seen, max(event_time) AS account_last_seen
    FROM dev WHERE account_id_pid IS NOT NULL
    GROUP BY device_key, account_id_pid
    HAVING max(event_time) >= $since
)
SELECT edges.device_key, edges.account_id_pid, edges.account_events, edges.account_first_seen,
       edges.account_last_seen, CAST(edges.account_last_seen AS DATE) AS event_date,
       env.* EXCLUDE (device_key), CAST($as_of AS TIMESTAMPTZ) AS as_of
FROM edges JOIN env ON env.device_key = edges.device_key
ORDER BY edges.device_key, edges.account_id_pid
"""


def device_risk(events: lake_scan.Snapshot, as_of: datetime, since: datetime) -> pa.Table:
    """The device-risk edges of ``events`` as of ``as_of``, for accounts seen on a device from ``since`` on."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        events.register(con, "events", DEVICE_COLUMNS)
        return con.sql(DEVICE_RISK, params={"as_of": as_of, "since": since}).to_arrow_table()
    finally:
        con.close()
