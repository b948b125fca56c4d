"""Risk signals: the lake's events reduced to the numbers the point-in-time features read.

One row per event the features can see, every column a fixed-width number, so a signal table is
small, memory-mappable and read in full in milliseconds, where decoding the wide events table takes
seconds. Identifiers are the same 64-bit hashes of pseudonyms the SQL features join on (0: missing);
text values the features only compare (countries, platforms) are 32-bit codes (0: missing, 1: present
but without a country or region); flags are 1/0, or -1 for missing where the feature tells missing
from false. Transactions also keep their event id and pseudonyms, which the scores are written with.

``windows.transaction_features`` computes the features from these rows in C, exactly as
``features.TRANSACTION_SQL`` does from the lake (a parity test holds them together).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from devicerisk import engine
from devicerisk.risk import features as F
from devicerisk.risk.geo import timezone_countries
from devicerisk.store import signal_log

try:  # the optional C engine (see _windows.c): it also drops the rows no feature can see
    from devicerisk import _windows
except ImportError:  # pragma: no cover - depends on the build
    _windows = None

#: Event types, as the engine numbers them.
ETYPES = {"transaction": 1, "account": 2, "device_info": 3, "app_list": 4, "crash": 5}
#: Account actions, as the engine numbers them.
ACTIONS = {"login": 1, "login_failed": 2, "register": 3, "password_change": 4}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _code(expr: str, present: str | None = None) -> str:
    """A 32-bit code of a text value: 0 when missing; with ``present`` (the raw text it was derived from),
    1 when that text is there but ``expr`` is not (a time zone without a country, a language without a
    region): the feature then compares nothing, but the row is still the newest locale seen."""
    code = f"(hash({expr}) % 4294967294 + 2)"
    if present is None:
        return f"CASE WHEN {expr} IS NULL THEN 0 ELSE {code} END::UINTEGER"
    return f"CASE WHEN {present} IS NULL THEN 0 WHEN {expr} IS NULL THEN 1 ELSE {code} END::UINTEGER"


def _flag(expr: str) -> str:
    return f"coalesce(({expr})::TINYINT, -1)"


def _case(column: str, codes: dict[str, int]) -> str:
    arms = " ".join(f"WHEN '{name}' THEN {code}" for name, code in codes.items())
    return f"(CASE {column} {arms} ELSE 0 END)::UTINYINT"


def _key(expr: str) -> str:
    """The SQL features' 64-bit key of an identifier, 0 when missing."""
    return f"coalesce({F._h(expr)}, 0)::UBIGINT"


_ROWS = f"""
SELECT epoch_us(e.event_time) AS t, {_key("account_id_pid")} AS acct, {_key(F._DEVICE)} AS dev,
       {_key("network_ip_prefix")} AS net, {_key("transaction_id_pid")} AS txn, {_key("counterparty_pid")} AS cp,
       {_case("event_type", ETYPES)} AS etype, {_case("action", ACTIONS)} AS action,
       {_flag("status = 'failed'")} AS failed, coalesce(kind IN ('crash', 'anr'), false)::UTINYINT AS crash,
       coalesce(amount, 'NaN'::DOUBLE) AS amount,
       {_code("device_imsi_country")} AS sim,
       {_code("tzc.tz_country", "e.timezone")} AS tzc,
       {_code("nullif(regexp_extract(language, '[-_]([A-Z]{2})$', 1), '')", "language")} AS langr,
       {_code("app_platform")} AS platform,
       coalesce(try_cast(split_part(app_version, '.', 1) AS INTEGER), -2147483648) AS major,
       {_flag("hardware_emulator")} AS hw_emu, {_flag("rooted")} AS rooted,
       (coalesce(installed_root_app, false) OR coalesce(running_root_app, false))::UTINYINT AS root_app,
       (coalesce(installed_hook_app, false) OR coalesce(running_hook_app, false))::UTINYINT AS hook_app,
       {_flag("device_model_emulator")} AS emu_model, {_flag("device_imei_checksum_ok")} AS imei_ok,
       {_flag("channel = 'bank_transfer'")} AS bank,
       CASE WHEN event_type = 'transaction' THEN event_id END AS event_id,
       CASE WHEN event_type = 'transaction' THEN account_id_pid END AS account_id_pid,
       CASE WHEN event_type = 'transaction' THEN transaction_id_pid END AS transaction_id_pid
FROM events e LEFT JOIN tzc ON tzc.tz = e.timezone
"""

SIGNAL_SQL = f"{_ROWS} ORDER BY t"

#: Fraud reports as +1/-1 steps per counterparty (0), account (1) and device (2), as ``features._BODY``
#: counts them: a report counts from its ``reported_at``; one linked through a transaction (or through a
#: reported account's device sighting) stops counting once that link leaves the 31-day history.
DELTA_SQL = f"""
WITH lab AS (
    SELECT subject_type, hash(subject_id_pid) AS subject, epoch_us(reported_at) AS r
    FROM labels WHERE label = 'fraud' AND subject_id_pid IS NOT NULL
),
lt AS (
    SELECT l.r, s.t + {F.HIST} AS gone, s.acct, s.dev, s.cp
    FROM lab l JOIN sig s ON s.txn = l.subject AND s.etype = 1
    WHERE l.subject_type = 'transaction' AND s.t < l.r AND s.t < $end AND l.r < s.t + {F.HIST}
),
la AS (SELECT r, subject AS acct FROM lab WHERE subject_type = 'account'),
day_dev AS (
    SELECT dev, acct, min(t) AS t FROM sig
    WHERE dev <> 0 AND acct IN (SELECT acct FROM la) AND t >= ($start - {F.HIST}) // {F.D} * {F.D} AND t < $end
    GROUP BY dev, acct, t // {F.D}
),
lad AS (
    SELECT la.r, max(d.t) + {F.HIST} AS gone, d.dev FROM la JOIN day_dev d ON d.acct = la.acct AND d.t < la.r
    GROUP BY la.r, la.acct, d.dev HAVING la.r < max(d.t) + {F.HIST}
)
SELECT t, kind, key, step FROM (
    SELECT r AS t, 0 AS kind, cp AS key, 1 AS step FROM lt WHERE cp <> 0
    UNION ALL SELECT gone, 0, cp, -1 FROM lt WHERE cp <> 0
    UNION ALL SELECT r, 1, acct, 1 FROM lt WHERE acct <> 0
    UNION ALL SELECT gone, 1, acct, -1 FROM lt WHERE acct <> 0
    UNION ALL SELECT r, 1, acct, 1 FROM la
    UNION ALL SELECT r, 2, dev, 1 FROM lt WHERE dev <> 0
    UNION ALL SELECT gone, 2, dev, -1 FROM lt WHERE dev <> 0
    UNION ALL SELECT r, 2, dev, 1 FROM lad
    UNION ALL SELECT gone, 2, dev, -1 FROM lad
)
"""


def micros(at: datetime) -> int:
    """Microseconds since the epoch, exactly (``epoch_us`` in the SQL), of a time-zone-aware time."""
    if at.tzinfo is None:
        raise ValueError(f"{at.isoformat()} has no time zone: give times in UTC (or with their offset)")
    return (at - EPOCH) // timedelta(microseconds=1)


def signals(events: F.Events) -> pa.Table:
    """The signal rows of lake ``events`` (an Arrow table or a scannable snapshot), in event-time order."""
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")  # a log line, not a terminal
    try:
        if isinstance(events, pa.Table):
            con.register("events", events.select([c for c in F.EVENT_COLUMNS if c in events.column_names]))
        else:
            events.register(con, "events", F.EVENT_COLUMNS)
        con.register("tzc", timezone_countries())
        return visible(con.sql(SIGNAL_SQL).to_arrow_table()).combine_chunks()  # one chunk: read without a copy
    finally:
        con.close()


def visible(sig: pa.Table) -> pa.Table:
    """The rows of ``sig`` (in time order) a feature can see: every transaction, account, device-info,
    app-list and crash event; of the others (operation logs, performance), the first of a device-account
    or network-account pair in its hour, of a SIM-account pair in its day, and of an app major version on
    a platform in its day. A row dropped here has an earlier row (kept) in the same bucket of the same
    batch, so the first row of every bucket across batches is kept and the windows find the same
    sightings. Without the C extension every row is kept (the same features, a bigger log)."""
    if _windows is None or sig.num_rows == 0:
        return sig
    keep = np.zeros(sig.num_rows, dtype=np.uint8)
    names = (
        ("t", np.int64),
        ("etype", np.uint8),
        ("acct", np.uint64),
        ("dev", np.uint64),
        ("net", np.uint64),
        ("sim", np.uint32),
        ("platform", np.uint32),
        ("major", np.int32),
    )
    _windows.keep_firsts(tuple(np.ascontiguousarray(sig.column(c).to_numpy(), dtype=d) for c, d in names), keep)
    return sig.filter(pa.array(keep.view(np.bool_)))


def report_steps(sig: pa.Table, labels: pa.Table | None, start: datetime, end: datetime) -> pa.Table:
    """The fraud reports' +1/-1 steps (``t``, ``kind``, ``key``, ``step``) for features of ``[start, end)``."""
    lab = (labels if labels is not None else F.empty_labels()).select(list(F.LABEL_COLUMNS))
    with engine.registered(labels=lab) as con:  # the thread's connection: the declared features reuse it
        reported = con.sql("""SELECT subject_type, hash(subject_id_pid) AS subject FROM labels
                              WHERE label = 'fraud' AND subject_id_pid IS NOT NULL""").to_arrow_table()
        is_txn = pc.equal(reported.column("subject_type"), "transaction")
        # only the rows a report can link to: its transactions, and the rows of reported accounts
        linked = pc.or_(
            pc.and_(
                pc.equal(sig.column("etype"), ETYPES["transaction"]),
                pc.is_in(sig.column("txn"), value_set=reported.column("subject").filter(is_txn)),
            ),
            pc.and_(
                pc.not_equal(sig.column("dev"), pa.scalar(0, pa.uint64())),
                pc.is_in(sig.column("acct"), value_set=reported.column("subject").filter(pc.invert(is_txn))),
            ),
        )
        params = {"start": micros(start), "end": micros(end)}
        with engine.registered(sig=sig.select(["t", "acct", "dev", "txn", "cp", "etype"]).filter(linked)):
            return con.sql(DELTA_SQL, params=params).to_arrow_table()


#: The signal log's rows: built by :func:`signals` from the events columns the features read. A change of
#: the SQL or of the time zone table (a tzdata upgrade moves zones between countries) rebuilds stored logs.
BUILDER = signal_log.RowBuilder(f"{SIGNAL_SQL}\n{timezone_countries().to_pydict()}", F.EVENT_COLUMNS, signals)


def refresh_log(lake_dir: Path, signals_dir: Path) -> signal_log.Refresh:
    """Bring the signal log up to the lake's events (see :func:`devicerisk.store.signal_log.refresh`)."""
    return signal_log.refresh(lake_dir, signals_dir, BUILDER)


def read_log(signals_dir: Path) -> signal_log.LogView | None:
    """The signal log's rows, when it was built by this module's rules (else None: a refresh rebuilds it)."""
    return signal_log.read(signals_dir, BUILDER)
