"""Consent at ingest: withdrawal (6.1), cancellation (6.3) and minors without guardian consent (7.2).

State changes are read from the batch's own account events and merged with the stored state, so a
withdrawal takes effect from its own time, even inside the batch that carries it. Data processed
before a withdrawal stays (6.1.2); only later events are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from devicerisk import engine
from devicerisk.contract.fields import EVENT_TYPES

_DECISIONS = pa.schema(
    [
        ("account_pid", pa.string()),
        ("purpose", pa.string()),
        ("decided_at", pa.timestamp("us", tz="UTC")),
        ("granted", pa.bool_()),
    ]
)
_CANCELS = pa.schema([("account_pid", pa.string()), ("cancelled_at", pa.timestamp("us", tz="UTC"))])
_AGES = pa.schema(
    [
        ("account_pid", pa.string()),
        ("declared_at", pa.timestamp("us", tz="UTC")),
        ("minor", pa.bool_()),
        ("guardian_consent", pa.bool_()),
    ]
)
#: The treated-event columns that consent decisions read.
CONSENT_COLUMNS = (
    "event_type",
    "event_time",
    "account_id_pid",
    "action",
    "purpose",
    "granted",
    "birth_year_minor",
    "guardian_consent",
)
STATE_SCHEMAS = {"consent_decisions": _DECISIONS, "cancellations": _CANCELS, "age_declarations": _AGES}

_UPDATES_SQL = {
    "consent_decisions": """SELECT account_id_pid AS account_pid, purpose, event_time AS decided_at, granted
        FROM events WHERE event_type = 'account' AND action = 'consent' AND account_id_pid IS NOT NULL
        AND purpose IS NOT NULL AND granted IS NOT NULL""",
    "cancellations": """SELECT account_id_pid AS account_pid, event_time AS cancelled_at
        FROM events WHERE event_type = 'account' AND action = 'cancel' AND account_id_pid IS NOT NULL""",
    "age_declarations": """SELECT account_id_pid AS account_pid, event_time AS declared_at, birth_year_minor AS minor,
        coalesce(guardian_consent, false) AS guardian_consent
        FROM events WHERE event_type = 'account' AND action = 'age_declared' AND account_id_pid IS NOT NULL
        AND birth_year_minor IS NOT NULL""",
}

# Only events of accounts with some consent, cancellation or age record can be dropped, so the
# joins run on those few events, not on the whole batch.
_DROP_SQL = """
WITH decisions AS (SELECT * FROM old_consent_decisions UNION ALL SELECT * FROM new_consent_decisions),
cancels AS (
    SELECT account_pid, min(cancelled_at) AS cancelled_at
    FROM (SELECT * FROM old_cancellations UNION ALL SELECT * FROM new_cancellations) GROUP BY account_pid
),
blocked AS (
    SELECT account_pid FROM (SELECT * FROM old_age_declarations UNION ALL SELECT * FROM new_age_declarations)
    QUALIFY row_number() OVER (PARTITION BY account_pid ORDER BY declared_at DESC) = 1
    AND minor AND NOT guardian_consent
),
known AS (
    SELECT account_pid FROM decisions UNION SELECT account_pid FROM cancels
    UNION SELECT account_pid FROM old_age_declarations UNION SELECT account_pid FROM new_age_declarations
),
e AS (
    SELECT i.idx, i.account_id_pid AS account_pid, i.event_time, p.purpose
    FROM indexed i JOIN purposes p USING (event_type) SEMI JOIN known k ON i.account_id_pid = k.account_pid
),
latest AS (
    SELECT e.idx, d.granted FROM e ASOF LEFT JOIN decisions d
    ON e.account_pid = d.account_pid AND e.purpose = d.purpose AND e.event_time >= d.decided_at
)
SELECT * FROM (
    SELECT e.idx,
           CASE WHEN b.account_pid IS NOT NULL THEN 'minor_without_guardian_consent'
                WHEN c.cancelled_at IS NOT NULL AND e.event_time > c.cancelled_at THEN 'account_cancelled'
                WHEN l.granted = false THEN 'consent_withdrawn' END AS reason
    FROM e LEFT JOIN latest l USING (idx)
    LEFT JOIN cancels c ON c.account_pid = e.account_pid
    LEFT JOIN blocked b ON b.account_pid = e.account_pid
) WHERE reason IS NOT NULL
"""


@dataclass(frozen=True, slots=True)
class ConsentOutcome:
    """Which rows to keep, why the others go, and the state changes the batch carries."""

    keep: pa.Array  # bool per input row
    dropped_by_reason: dict[str, int]
    updates: dict[str, pa.Table]


def apply_consent(events: pa.Table, state: dict[str, pa.Table]) -> ConsentOutcome:
    """Decide which treated events may be kept under the stored and in-batch consent state."""
    purposes = pa.table({"event_type": [e.name for e in EVENT_TYPES], "purpose": [e.purpose for e in EVENT_TYPES]})
    positions = pa.array(np.arange(events.num_rows, dtype=np.int64))
    indexed = events.select(["account_id_pid", "event_time", "event_type"]).append_column("idx", positions)
    old = {
        f"old_{name}": schema.empty_table()
        if state.get(name) is None
        else state[name].select(schema.names).cast(schema)
        for name, schema in STATE_SCHEMAS.items()
    }
    with engine.registered(events=events, indexed=indexed, purposes=purposes, **old) as con:
        updates = {
            name: con.sql(_UPDATES_SQL[name]).to_arrow_table().cast(schema) for name, schema in STATE_SCHEMAS.items()
        }
        with engine.registered(**{f"new_{name}": table for name, table in updates.items()}):
            verdict = con.sql(_DROP_SQL).to_arrow_table()
    counts = {row["values"]: row["counts"] for row in pc.value_counts(verdict.column("reason")).to_pylist()}
    keep = np.ones(events.num_rows, dtype=bool)
    keep[verdict.column("idx").to_numpy()] = False
    return ConsentOutcome(keep=pa.array(keep), dropped_by_reason=counts, updates=updates)


def covered_accounts(decisions: pa.Table, purpose: str) -> pa.Array:
    """The accounts whose latest recorded consent decision for ``purpose`` granted it: those a purpose that needs
    consent (2.8) may read. ``decisions`` is the warehouse's ``consent_decisions`` table."""
    with engine.registered(decisions=decisions) as con:
        return (
            con.sql(
                """SELECT account_pid FROM decisions WHERE purpose = $purpose
                   QUALIFY row_number() OVER (PARTITION BY account_pid ORDER BY decided_at DESC) = 1 AND granted""",
                params={"purpose": purpose},
            )
            .to_arrow_table()
            .column("account_pid")
            .combine_chunks()
        )
