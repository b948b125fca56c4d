"""Point-in-time features in DuckDB SQL: for an event at time t, only data strictly before t is used.

Every windowed aggregate runs over ``RANGE BETWEEN <w> PRECEDING AND 1 PRECEDING`` on the event time in
microseconds, so the event itself and anything at or after t never counts. Feedback labels count only
from their ``reported_at``: a label reported after t is invisible to a feature at t, however early the
event it describes. Empty windows give 0 for counts and NULL for ratios and ages (the model treats NULL
as its own branch), never NaN from a division. A row without a device (or network) has NULL novelty ages
for it: unknown, not "first used 0 h before".

Query rows are transactions (transaction risk) or one probe per account at an as-of time (account risk);
both go through the same SQL, so the two scores share one definition of every feature.

Device graph distinct counts over 24 h / 7 d windows run on hourly sightings (the first sighting of each
device-account pair per hour), which keeps them cheap; a pair seen only early in an hour that straddles
the window edge may be missed, an error of at most one hour at the edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

import duckdb
import numpy as np
import pyarrow as pa

from devicerisk.contract.fields import DEVICE_KEY_COLUMNS, DEVICE_KEY_SQL
from devicerisk.risk import declared
from devicerisk.risk.catalog import (  # noqa: F401 - the catalog, re-exported for the modules that read features
    BY_NAME,
    ENGINE_FEATURE_NAMES,
    ENGINE_FEATURES,
    FEATURE_NAMES,
    FEATURES,
    HOUR_US,
    WINDOWS,
    Feature,
    Window,
)
from devicerisk.risk.geo import timezone_countries

#: Lake columns the features read (a projection: the events table is wide).
EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "event_type",
    "event_time",
    "account_id_pid",
    *DEVICE_KEY_COLUMNS,
    "network_ip_prefix",
    "device_imsi_country",
    "app_platform",
    "app_version",
    "device_model_emulator",
    "device_imei_checksum_ok",
    "timezone",
    "language",
    "hardware_emulator",
    "rooted",
    "action",
    "transaction_id_pid",
    "amount",
    "status",
    "channel",
    "counterparty_pid",
    "kind",
    "installed_root_app",
    "installed_hook_app",
    "running_root_app",
    "running_hook_app",
)
LABEL_COLUMNS: tuple[str, ...] = ("subject_type", "subject_id_pid", "label", "reported_at")

#: The device key (the contract's ``DEVICE_KEY_COLUMNS``) as SQL: the first device pseudonym an event carries.
_DEVICE = DEVICE_KEY_SQL
H, D = 3_600_000_000, 86_400_000_000  # microseconds
W = 7 * D
HISTORY = timedelta(days=31)  # the longest window (30 d amount median) plus a day: what scoring loads
HIST = 31 * D


def _h(expr: str) -> str:
    """A 64-bit hash of an identifier (NULL stays NULL): windows sort and join on integers, not 32-hex text."""
    return f"CASE WHEN {expr} IS NOT NULL THEN hash({expr}) END"


def _win(part: str, width: int | None) -> str:
    """A frame over rows strictly before the current row's time (``width`` None = unbounded)."""
    start = "UNBOUNDED" if width is None else str(width)
    return f"OVER (PARTITION BY {part} ORDER BY t RANGE BETWEEN {start} PRECEDING AND 1 PRECEDING)"


def _graph(part: str, other: str, width: int, windowed: str, total: str) -> str:
    """Distinct ``other`` per ``part`` over ``width`` (hourly sightings) and over 31 d (daily sightings)."""
    return f"""
    SELECT qid,
        count(DISTINCT CASE WHEN hourly THEN {other} END) {_win(part, width)} AS {windowed},
        count(DISTINCT CASE WHEN NOT hourly THEN {other} END) {_win(part, HIST)} AS {total}
    FROM (SELECT NULL AS qid, t, {part}, {other}, true AS hourly FROM seen_dev
          UNION ALL SELECT NULL, t, {part}, {other}, false FROM day_dev
          UNION ALL SELECT qid, t, {part}, NULL, true FROM q WHERE {part} IS NOT NULL)
    QUALIFY qid IS NOT NULL
"""


def _since(width: int, bucket: int) -> str:
    """The oldest sighting a window of ``width`` before ``$start`` can reach, down to a whole ``bucket``: a
    bucket is kept whole or dropped whole, so its sighting is always its true first row."""
    return f"(epoch_us($start) - {width}) // {bucket} * {bucket}"


def _first_seen(key: str, sightings: str) -> str:
    """The first daily sighting of (account, ``key``) in the 31 d before each query row (NULL: none)."""
    return f"""
    SELECT qid, min(t) OVER (PARTITION BY acct, {key} ORDER BY t RANGE BETWEEN {HIST} PRECEDING AND 1 PRECEDING)
        AS first_t
    FROM (SELECT NULL AS qid, t, acct, {key} FROM {sightings}
          UNION ALL SELECT qid, t, acct, {key} FROM q WHERE {key} IS NOT NULL AND acct IS NOT NULL)
    QUALIFY qid IS NOT NULL
"""


def _reports(part: str, sources: str) -> str:
    """Fraud reports per ``part`` visible at t: +1 from a report's ``r``, -1 once its link leaves the window."""
    return f"""
    SELECT qid, coalesce(sum(one) {_win(part, None)}, 0) AS n
    FROM ({sources} UNION ALL SELECT qid, t, {part}, 0 FROM q WHERE {part} IS NOT NULL)
    QUALIFY qid IS NOT NULL
"""


_EV = f"""
ev AS (
    SELECT epoch_us(event_time) AS t, {_h("account_id_pid")} AS acct, {_h(_DEVICE)} AS dev,
           {_h("network_ip_prefix")} AS net, device_imsi_country AS sim, event_type, action, status, kind, amount,
           {_h("transaction_id_pid")} AS txn, {_h("counterparty_pid")} AS cp, timezone, language, app_platform,
           try_cast(split_part(app_version, '.', 1) AS INTEGER) AS major,
           hardware_emulator, rooted,
           coalesce(installed_root_app, false) OR coalesce(running_root_app, false) AS root_app,
           coalesce(installed_hook_app, false) OR coalesce(running_hook_app, false) AS hook_app
    FROM events WHERE event_time < $end
)"""

# q: query rows (qid, t, acct, txn, dev, net, sim, cp, amount, status, channel, app_platform, major,
# emulator_model, imei_checksum_ok); built by one of the two queries below.
_Q_TXN = f"""
q AS (
    SELECT event_id AS qid, epoch_us(event_time) AS t, account_id_pid AS acct_pid, {_h("account_id_pid")} AS acct,
           transaction_id_pid AS txn_pid, {_h(_DEVICE)} AS dev, {_h("network_ip_prefix")} AS net,
           device_imsi_country AS sim, {_h("counterparty_pid")} AS cp, amount, status, channel,
           app_platform, try_cast(split_part(app_version, '.', 1) AS INTEGER) AS major,
           device_model_emulator AS emulator_model, device_imei_checksum_ok AS imei_checksum_ok
    FROM events
    WHERE event_type = 'transaction' AND event_time >= $start AND event_time < $end AND account_id_pid IS NOT NULL
)"""
_Q_ACCOUNT = f"""
q AS (
    SELECT any_value(p.acct_pid) AS qid, epoch_us($end) AS t, any_value(p.acct_pid) AS acct_pid, ev.acct,
           NULL::VARCHAR AS txn_pid, arg_max(dev, t) AS dev, arg_max(net, t) AS net,
           arg_max(sim, t) FILTER (sim IS NOT NULL) AS sim, NULL::UBIGINT AS cp, NULL::DOUBLE AS amount,
           NULL::VARCHAR AS status, NULL::VARCHAR AS channel, arg_max(app_platform, t) AS app_platform,
           arg_max(major, t) AS major, NULL::BOOLEAN AS emulator_model, NULL::BOOLEAN AS imei_checksum_ok
    FROM ev JOIN (SELECT DISTINCT account_id_pid AS acct_pid, {_h("account_id_pid")} AS acct FROM events
                  WHERE event_time >= $start AND event_time < $end AND account_id_pid IS NOT NULL) p USING (acct)
    WHERE t >= epoch_us($start) GROUP BY ev.acct
)"""

_BODY = f"""
-- the accounts, devices and networks of the query rows: only their histories are windowed
qa AS (SELECT DISTINCT acct FROM q WHERE acct IS NOT NULL),
qd AS (SELECT DISTINCT dev FROM q WHERE dev IS NOT NULL),
qn AS (SELECT DISTINCT net FROM q WHERE net IS NOT NULL),
-- velocity per account and per device: transaction and account events, plus the query rows (all flags 0)
vel AS (
    SELECT NULL AS qid, t, acct, dev, (event_type = 'transaction')::INT AS txn,
           (status = 'failed')::INT AS failed_pay, (action = 'login')::INT AS login,
           (action = 'login_failed')::INT AS login_failed,
           CASE WHEN action = 'register' THEN t END AS reg_t,
           CASE WHEN action = 'password_change' THEN t END AS pw_t,
           CASE WHEN event_type = 'transaction' THEN amount END AS amount
    FROM ev WHERE event_type IN ('transaction', 'account')
      AND (acct IN (SELECT acct FROM qa) OR dev IN (SELECT dev FROM qd))
    UNION ALL SELECT qid, t, acct, dev, 0, 0, 0, 0, NULL, NULL, NULL FROM q
),
va AS (
    SELECT qid,
        coalesce(sum(txn) {_win("acct", H)}, 0) AS acct_txn_1h,
        coalesce(sum(txn) {_win("acct", D)}, 0) AS acct_txn_24h,
        coalesce(sum(txn) {_win("acct", W)}, 0) AS acct_txn_7d,
        coalesce(sum(failed_pay) {_win("acct", H)}, 0) AS acct_failed_pay_1h,
        coalesce(sum(failed_pay) {_win("acct", D)}, 0) AS acct_failed_pay_24h,
        coalesce(sum(login) {_win("acct", D)}, 0) AS acct_login_24h,
        coalesce(sum(login_failed) {_win("acct", D)}, 0) AS acct_login_failed_24h,
        coalesce(sum(login_failed) {_win("acct", W)}, 0) AS acct_login_failed_7d,
        max(reg_t) {_win("acct", HIST)} AS reg_t,
        max(pw_t) {_win("acct", HIST)} AS pw_t,
        median(amount) {_win("acct", 30 * D)} AS median_amount
    FROM vel WHERE acct IS NOT NULL QUALIFY qid IS NOT NULL
),
vd AS (
    SELECT qid,
        coalesce(sum(txn) {_win("dev", H)}, 0) AS dev_txn_1h,
        coalesce(sum(txn) {_win("dev", D)}, 0) AS dev_txn_24h,
        coalesce(sum(failed_pay) {_win("dev", D)}, 0) AS dev_failed_pay_24h,
        coalesce(sum(login) {_win("dev", D)}, 0) AS dev_login_24h
    FROM vel WHERE dev IS NOT NULL QUALIFY qid IS NOT NULL
),
-- device integrity and locale, from device_info, app_list and crash events before t
di AS (
    SELECT NULL AS qid, t, dev, hardware_emulator::INT AS emu_hw, rooted::INT AS rooted, root_app::INT AS root_app,
           hook_app::INT AS hook_app, (kind IN ('crash', 'anr'))::INT AS crash,
           (event_type = 'device_info')::INT AS start, timezone, language, sim
    FROM ev WHERE event_type IN ('device_info', 'app_list', 'crash') AND dev IN (SELECT dev FROM qd)
    UNION ALL SELECT qid, t, dev, NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL FROM q WHERE dev IS NOT NULL
),
dv AS (
    SELECT qid,
        max(emu_hw) {_win("dev", HIST)} AS emulator_hardware,
        max(rooted) {_win("dev", HIST)} AS rooted,
        coalesce(max(root_app) {_win("dev", HIST)}, 0) AS root_app,
        coalesce(max(hook_app) {_win("dev", HIST)}, 0) AS hook_app,
        coalesce(sum(crash) {_win("dev", W)}, 0) AS crashes_7d,
        coalesce(sum(start) {_win("dev", W)}, 0) AS starts_7d,
        last_value(timezone IGNORE NULLS) {_win("dev", HIST)} AS tz,
        last_value(language IGNORE NULLS) {_win("dev", HIST)} AS lang,
        last_value(sim IGNORE NULLS) {_win("dev", HIST)} AS dev_sim
    FROM di QUALIFY qid IS NOT NULL
),
-- device graph and novelty: daily sightings of each pair over 31 d, hourly ones for the shorter windows
day_dev AS (
    SELECT dev, acct, min(t) AS t FROM ev
    WHERE dev IS NOT NULL AND acct IS NOT NULL AND t >= {_since(HIST, D)}
      AND (dev IN (SELECT dev FROM qd) OR acct IN (SELECT acct FROM qa))
    GROUP BY dev, acct, t // {D}
),
day_net AS (
    SELECT net, acct, min(t) AS t FROM ev
    WHERE net IS NOT NULL AND acct IN (SELECT acct FROM qa) AND t >= {_since(HIST, D)}
    GROUP BY net, acct, t // {D}
),
day_sim AS (
    SELECT sim, acct, min(t) AS t FROM ev
    WHERE sim IS NOT NULL AND acct IN (SELECT acct FROM qa) AND t >= {_since(HIST, D)}
    GROUP BY sim, acct, t // {D}
),
nd AS ({_first_seen("dev", "day_dev")}),
nn AS ({_first_seen("net", "day_net")}),
ns AS ({_first_seen("sim", "day_sim")}),
seen_dev AS (
    SELECT dev, acct, min(t) AS t FROM ev
    WHERE dev IS NOT NULL AND acct IS NOT NULL AND t >= {_since(W, H)}
      AND (dev IN (SELECT dev FROM qd) OR acct IN (SELECT acct FROM qa))
    GROUP BY dev, acct, t // {H}
),
seen_net AS (
    SELECT net, acct, min(t) AS t FROM ev
    WHERE net IN (SELECT net FROM qn) AND acct IS NOT NULL AND t >= {_since(D, H)}
    GROUP BY net, acct, t // {H}
),
gd AS ({_graph("dev", "acct", D, "accounts_on_device_24h", "accounts_on_device_31d")}),
ga AS ({_graph("acct", "dev", W, "devices_of_account_7d", "devices_of_account_31d")}),
gn AS (
    SELECT qid, count(DISTINCT acct) {_win("net", D)} AS accounts_on_network_24h
    FROM (SELECT NULL AS qid, t, net, acct FROM seen_net
          UNION ALL SELECT qid, t, net, NULL FROM q WHERE net IS NOT NULL)
    QUALIFY qid IS NOT NULL
),
-- feedback labels, each visible from its reported_at r; one linked to a transaction (or to a device through
-- the reported account's sightings) only while that link is inside the row's 31-day history, as when scoring
lab AS (
    SELECT subject_type, hash(subject_id_pid) AS subject, epoch_us(reported_at) AS r
    FROM labels WHERE label = 'fraud' AND subject_id_pid IS NOT NULL
),
lt AS (
    SELECT l.r, e.t + {HIST} AS gone, e.acct, e.dev, e.cp
    FROM lab l JOIN ev e ON e.txn = l.subject AND e.event_type = 'transaction'
    WHERE l.subject_type = 'transaction' AND e.t < l.r AND l.r < e.t + {HIST}  -- a report after its link is gone
),
la AS (SELECT r, subject AS acct FROM lab WHERE subject_type = 'account'),
lad AS (  -- devices of a reported account: linked while its last sighting before the report is in the window
    SELECT la.r, max(d.t) + {HIST} AS gone, d.dev FROM la JOIN day_dev d ON d.acct = la.acct AND d.t < la.r
    GROUP BY la.r, la.acct, d.dev HAVING la.r < max(d.t) + {HIST}
),
lc AS ({
    _reports(
        "cp",
        "SELECT NULL AS qid, r AS t, cp, 1 AS one FROM lt WHERE cp IS NOT NULL "
        "UNION ALL SELECT NULL, gone, cp, -1 FROM lt WHERE cp IS NOT NULL",
    )
}),
lac AS ({
    _reports(
        "acct",
        "SELECT NULL AS qid, r AS t, acct, 1 AS one FROM lt WHERE acct IS NOT NULL "
        "UNION ALL SELECT NULL, gone, acct, -1 FROM lt WHERE acct IS NOT NULL "
        "UNION ALL SELECT NULL, r, acct, 1 FROM la",
    )
}),
ldc AS ({
    _reports(
        "dev",
        "SELECT NULL AS qid, r AS t, dev, 1 AS one FROM lt WHERE dev IS NOT NULL "
        "UNION ALL SELECT NULL, gone, dev, -1 FROM lt WHERE dev IS NOT NULL "
        "UNION ALL SELECT NULL, r, dev, 1 FROM lad UNION ALL SELECT NULL, gone, dev, -1 FROM lad",
    )
}),
-- newest app major version per platform, as known on each earlier day
pv AS (
    SELECT app_platform, day, max(m) OVER (PARTITION BY app_platform ORDER BY day
                                           RANGE BETWEEN 31 PRECEDING AND 1 PRECEDING) AS newest
    FROM (SELECT app_platform, t // {D} AS day, max(major) AS m FROM ev WHERE major IS NOT NULL GROUP BY ALL)
)
SELECT
    q.qid, q.t, q.acct_pid AS acct, q.txn_pid AS txn, coalesce(q.acct, 0)::UBIGINT AS acct_key,
    coalesce(q.cp, 0)::UBIGINT AS cp_key,
    gd.accounts_on_device_24h::DOUBLE AS accounts_on_device_24h,
    gd.accounts_on_device_31d::DOUBLE AS accounts_on_device_31d,
    coalesce(ga.devices_of_account_7d, 0)::DOUBLE AS devices_of_account_7d,
    coalesce(ga.devices_of_account_31d, 0)::DOUBLE AS devices_of_account_31d,
    gn.accounts_on_network_24h::DOUBLE AS accounts_on_network_24h,
    va.acct_txn_1h::DOUBLE AS acct_txn_1h, va.acct_txn_24h::DOUBLE AS acct_txn_24h,
    va.acct_txn_7d::DOUBLE AS acct_txn_7d, va.acct_failed_pay_1h::DOUBLE AS acct_failed_pay_1h,
    va.acct_failed_pay_24h::DOUBLE AS acct_failed_pay_24h, va.acct_login_24h::DOUBLE AS acct_login_24h,
    va.acct_login_failed_24h::DOUBLE AS acct_login_failed_24h,
    va.acct_login_failed_7d::DOUBLE AS acct_login_failed_7d,
    vd.dev_txn_1h::DOUBLE AS dev_txn_1h, vd.dev_txn_24h::DOUBLE AS dev_txn_24h,
    vd.dev_failed_pay_24h::DOUBLE AS dev_failed_pay_24h, vd.dev_login_24h::DOUBLE AS dev_login_24h,
    -- no device (network) on the row: its age is unknown (NULL), not 0 h, which means a pair new at t
    CASE WHEN q.dev IS NULL THEN NULL ELSE coalesce((q.t - nd.first_t) / {H}, 0) END::DOUBLE
        AS device_age_for_account_h,
    CASE WHEN q.net IS NULL THEN NULL ELSE coalesce((q.t - nn.first_t) / {H}, 0) END::DOUBLE
        AS network_age_for_account_h,
    CASE WHEN q.sim IS NULL THEN NULL WHEN ns.first_t IS NOT NULL THEN 0 ELSE 1 END::DOUBLE AS new_sim_country,
    ((q.t - va.reg_t) / {H})::DOUBLE AS hours_since_registration,
    ((q.t - va.pw_t) / {H})::DOUBLE AS hours_since_password_change,
    q.emulator_model::DOUBLE AS emulator_model,
    dv.emulator_hardware::DOUBLE AS emulator_hardware,
    dv.rooted::DOUBLE AS rooted,
    dv.root_app::DOUBLE AS root_app,
    dv.hook_app::DOUBLE AS hook_app,
    (NOT q.imei_checksum_ok)::DOUBLE AS imei_checksum_bad,
    greatest(pv.newest - q.major, 0)::DOUBLE AS app_versions_behind,
    (dv.crashes_7d / nullif(dv.starts_7d, 0))::DOUBLE AS crash_rate_7d,
    (coalesce(q.sim, dv.dev_sim) <> tzc.tz_country)::DOUBLE AS sim_tz_mismatch,
    (coalesce(q.sim, dv.dev_sim) <> nullif(regexp_extract(dv.lang, '[-_]([A-Z]{{2}})$', 1), ''))::DOUBLE
        AS sim_lang_mismatch,
    (tzc.tz_country <> nullif(regexp_extract(dv.lang, '[-_]([A-Z]{{2}})$', 1), ''))::DOUBLE AS tz_lang_mismatch,
    (q.amount / nullif(va.median_amount, 0))::DOUBLE AS amount_to_median,
    q.amount::DOUBLE AS amount,
    (q.status = 'failed')::DOUBLE AS failed_status,
    (q.channel = 'bank_transfer')::DOUBLE AS bank_transfer,
    coalesce(lc.n, 0)::DOUBLE AS counterparty_fraud_reports,
    coalesce(lac.n, 0)::DOUBLE AS account_fraud_reports,
    coalesce(ldc.n, 0)::DOUBLE AS device_fraud_reports
FROM q
LEFT JOIN va USING (qid) LEFT JOIN vd USING (qid) LEFT JOIN dv USING (qid)
LEFT JOIN gd USING (qid) LEFT JOIN ga USING (qid) LEFT JOIN gn USING (qid)
LEFT JOIN lc USING (qid) LEFT JOIN lac USING (qid) LEFT JOIN ldc USING (qid)
LEFT JOIN nd USING (qid) LEFT JOIN nn USING (qid) LEFT JOIN ns USING (qid)
LEFT JOIN pv ON pv.app_platform = q.app_platform AND pv.day = q.t // {D}
LEFT JOIN tzc ON tzc.tz = dv.tz
ORDER BY q.t, q.qid
"""

TRANSACTION_SQL = f"WITH {_EV}, {_Q_TXN}, {_BODY}"
ACCOUNT_SQL = f"WITH {_EV}, {_Q_ACCOUNT}, {_BODY}"


def empty_labels() -> pa.Table:
    """A labels table with no rows (features are defined without any feedback)."""
    return pa.table(
        {
            "subject_type": pa.array([], pa.string()),
            "subject_id_pid": pa.array([], pa.string()),
            "label": pa.array([], pa.string()),
            "reported_at": pa.array([], pa.timestamp("us", tz="UTC")),
        }
    )


class EventSource(Protocol):
    """Lake events DuckDB can scan itself (``store.lake_scan.Snapshot``): no Arrow copy of the rows first."""

    def register(self, con: duckdb.DuckDBPyConnection, view: str, columns: Sequence[str]) -> None: ...


#: The events a query reads: an Arrow table of lake rows, or a snapshot DuckDB scans directly.
Events = pa.Table | EventSource


def _run(sql: str, events: Events, labels: pa.Table | None, start: datetime, end: datetime) -> pa.Table:
    # A private connection: the query registers its own inputs, and DuckDB uses every core for it.
    con = duckdb.connect(":memory:")
    try:
        if isinstance(events, pa.Table):
            con.register("events", events.select([c for c in EVENT_COLUMNS if c in events.column_names]))
        else:
            events.register(con, "events", EVENT_COLUMNS)
        con.register("labels", (labels if labels is not None else empty_labels()).select(list(LABEL_COLUMNS)))
        con.register("tzc", timezone_countries())
        params = {"start": start, "end": end}
        return con.sql(sql, params=params).to_arrow_table()
    finally:
        con.close()


def transaction_features(
    events: Events, labels: pa.Table | None, start: datetime, end: datetime, sig: pa.Table | None = None
) -> pa.Table:
    """Features of every transaction with ``start <= event_time < end``: ``qid`` (event id), ``t``, ``acct``, ...

    ``events`` must hold the lake rows from at least 30 days before ``start`` (the longest window) up
    to ``end``; rows at or after ``end`` are ignored. ``sig``: the signal rows of ``events``, when the caller
    has them already (made here otherwise).
    """
    return with_declared(_run(TRANSACTION_SQL, events, labels, start, end), events, labels, sig)


def account_features(
    events: Events, labels: pa.Table | None, active_from: datetime, as_of: datetime, sig: pa.Table | None = None
) -> pa.Table:
    """Features of every account active in ``[active_from, as_of)``, as of ``as_of`` (``qid`` = account)."""
    return with_declared(_run(ACCOUNT_SQL, events, labels, active_from, as_of), events, labels, sig)


def with_declared(table: pa.Table, events: Events, labels: pa.Table | None, sig: pa.Table | None = None) -> pa.Table:
    """``table`` (the SQL's feature rows, with their ``acct_key`` and ``cp_key``) with the declared features
    added, computed by the same engine as in scoring from the signal rows of the same ``events`` (``sig``, or
    made from ``events``)."""
    from devicerisk.risk import signals  # signals builds on this module's SQL

    X = np.zeros((0, len(WINDOWS)))
    if table.num_rows:
        keys = (table.column(c).to_numpy() for c in ("t", "acct_key", "cp_key"))
        X = declared.compute(signals.signals(events) if sig is None else sig, labels, *keys)
    for j, w in enumerate(WINDOWS):
        table = table.append_column(w.name, pa.array(X[:, j], mask=np.isnan(X[:, j])))
    return table
