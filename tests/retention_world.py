"""A small world for retention and request tests: every store holds a subject, a neighbour and strangers.

The subject and a neighbour share a device (the same IMEI); an unlogged event on that device has no
account. Besides the ingested events table there are a labels table keyed as the data contract defines
it (``subject_type``, ``subject_id_pid``: account and transaction labels, no account column), a
scores-like lake table with a list column of reasons, a serving snapshot and a model training snapshot
keyed by ``account_id_pid``, and the signal log built from the events, as scoring builds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import write_deltalake

from devicerisk.config import Settings
from devicerisk.governance.subjects import Identifiers
from devicerisk.ingest.pipeline import ingest_batch
from devicerisk.ingest.runtime import ingest_context
from devicerisk.privacy.keys import load_pseudonym_key
from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.risk import signals
from factories import event, write_batch

SHARED_IMEI = "352099001761481"
SUBJECT = Identifiers(account_id="acct-subject", phone="+86 139 0013 9000", devices={"imei": SHARED_IMEI})
NEIGHBOUR = "acct-neighbour"
STRANGER = "acct-stranger"
#: "Now" for the world: events are dated relative to it.
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class World:
    settings: Settings
    subject_pid: str
    neighbour_pid: str
    stranger_pid: str
    imei_pid: str


def _at(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def _events(account: str | None, days_ago: int, *types: str, imei: str = SHARED_IMEI) -> list[dict]:
    out = []
    for t in types:
        e = event(t, account_id=account, event_time=_at(days_ago))
        e["device"] = {**e["device"], "imei": imei}
        if t == "transaction":  # each transaction its own id: labels on transactions are keyed by it
            e["payload"] = {**e["payload"], "transaction_id": f"T-{account or 'unlogged'}-{days_ago}"}
        if t == "account":
            e["payload"] = {**e["payload"], "phone": SUBJECT.phone if account == SUBJECT.account_id else None}
        out.append(e)
    return out


def build(settings: Settings) -> World:
    """Ingest the world's events and write the extra tables and snapshots."""
    ctx = ingest_context(settings)
    records: list[dict | bytes] = []
    records += _events(SUBJECT.account_id, 1, "operation", "transaction", "account", "crash", "device_info")
    consent = _events(SUBJECT.account_id, 1, "account")[0]
    consent["payload"] = {"action": "consent", "purpose": "marketing", "granted": True}
    records.append(consent)  # the warehouse's consent state holds the subject too
    records += _events(SUBJECT.account_id, 40, "operation", "crash")  # crash is past its 30 days
    records += _events(SUBJECT.account_id, 100, "operation", "transaction")  # operation is past its 90 days
    records += _events(NEIGHBOUR, 1, "operation", "transaction")  # same device, another account
    records += _events(NEIGHBOUR, 100, "operation")
    records += _events(None, 1, "operation")  # unlogged use of the shared device
    records += _events(STRANGER, 2, "operation", "crash", imei="356938035643809")
    bad = _events(SUBJECT.account_id, 1, "transaction")[0]
    bad["payload"]["amount"] = "not a number"  # quarantined, with the subject's identifiers inside
    records.append(bad)
    ingest_batch(write_batch(settings.landing_dir / "telemetry" / "world.ndjson", records), ctx)

    p = Pseudonymiser(load_pseudonym_key(settings))
    subject, neighbour, stranger = (p.pseudonymise_one("account", a) for a in (SUBJECT.account_id, NEIGHBOUR, STRANGER))
    imei = p.pseudonymise_one("imei", SHARED_IMEI)
    assert subject and neighbour and stranger and imei
    day = NOW.date()
    txn = p.pseudonymise_one("transaction", f"T-{SUBJECT.account_id}-1")
    neighbour_txn = p.pseudonymise_one("transaction", f"T-{NEIGHBOUR}-1")
    _labels(
        settings.lake_dir,
        [
            ("account", subject),
            ("transaction", txn),
            ("account", neighbour),
            ("transaction", neighbour_txn),
            ("account", stranger),
        ],
        [NOW - timedelta(days=5)] * 4 + [NOW],
    )
    _scores(settings.lake_dir, [subject, neighbour, subject], [day, day, day - timedelta(days=2000)])
    _snapshot(
        settings.serving_dir / "scores-v3.parquet",
        {"account_id_pid": [subject, neighbour, stranger], "score": [0.9, 0.1, 0.5], "scored_at": [NOW] * 3},
    )
    _snapshot(
        settings.models_dir / "v7" / "training.parquet",
        {
            "account_id_pid": [subject, neighbour, None, subject],
            "device_imei_pid": [imei, imei, imei, imei],
            "event_date": [day, day, day, day - timedelta(days=400)],
            "feature": [1.0, 2.0, 3.0, 4.0],
        },
    )
    signals.refresh_log(settings.lake_dir, settings.signals_dir)
    return World(settings, subject, neighbour, stranger, imei)


def _labels(lake_dir: Path, subjects: list[tuple[str, str | None]], when: list[datetime]) -> None:
    """Labels as the data contract keys them: by subject type and that subject's pseudonym (no account column)."""
    table = pa.table(
        {
            "label_id": [f"l{i}" for i in range(len(subjects))],
            "subject_type": [t for t, _ in subjects],
            "subject_id_pid": [pid for _, pid in subjects],
            "label": ["fraud"] * len(subjects),
            "reported_at": pa.array(when, pa.timestamp("us", "UTC")),
        }
    )
    write_deltalake(str(lake_dir / "labels"), table)


def _scores(lake_dir: Path, accounts: list[str], days: list[date]) -> None:
    """Scores as scoring writes them: with their worded reasons, a list column."""
    table = pa.table(
        {
            "account_id_pid": accounts,
            "score": [0.5] * len(accounts),
            "reasons": pa.array([["new device", "night-time activity"]] * len(accounts), pa.list_(pa.string())),
            "event_date": pa.array(days, pa.date32()),
        }
    )
    write_deltalake(str(lake_dir / "scores"), table, partition_by=["event_date"])


def _snapshot(path: Path, columns: dict[str, list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
