"""The retention purge (5.1.2) across every store, legal holds (2.9(4), 4.5(4)) and the retention check."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from deltalake import DeltaTable, write_deltalake

import retention_world as world
from devicerisk.config import Settings
from devicerisk.governance import holds, purge, retention_check
from devicerisk.governance.stores import Stores, stores_for
from devicerisk.risk import signals
from devicerisk.store import audit, governance, lake, quarantine
from devicerisk.store import lake_maintenance as lakes
from devicerisk.store.rows import SubjectRows
from factories import verified


@pytest.fixture
def now_grace(settings: Settings) -> Settings:
    return settings.model_copy(update={"vacuum_grace_hours": 0})


def _events(stores: Stores, account: str) -> list[tuple[str, int]]:
    """(event type, days old) of an account's events in the current version."""
    rows = lakes.read_where(stores.lake_dir, "events", ds.field("account_id_pid") == account).to_pylist()
    return sorted((r["event_type"], (world.NOW.date() - r["event_date"]).days) for r in rows)


def test_clause_5_1_2_purge_removes_expired_data_from_every_store(now_grace: Settings) -> None:
    w = world.build(now_grace)
    stores = stores_for(now_grace)
    before = {(v.store, v.where, v.retention_class) for v in retention_check.verify(stores, world.NOW)}
    assert before == {
        ("lake", "events", "operation_log"),
        ("lake", "events", "crash_perf"),
        ("lake", "scores", "score"),
        ("models", "models/v7/training.parquet", "model_snapshot"),
    }

    logged, events = signals.read_log(stores.signals_dir), lake.dataset(stores.lake_dir, "events").count_rows()
    assert logged is not None and logged.table.num_rows == events  # the signal log holds every event, expired too

    report = purge.purge(stores, world.NOW)

    assert report.removed["lake.events"] == 3  # subject's and neighbour's 100-day operations, the 40-day crash
    assert report.removed["signals"] == events and signals.read_log(stores.signals_dir) is None  # dropped whole
    assert signals.refresh_log(stores.lake_dir, stores.signals_dir).rows_total == events - 3  # rebuilt from the rest
    assert report.removed["lake.scores"] == 1 and report.removed["models"] == 1
    assert report.removed["lake.labels"] == 0 and report.removed["serving"] == 0
    assert retention_check.verify(stores, world.NOW) == []
    assert ("transaction", 100) in _events(stores, w.subject_pid)  # transactions are kept three years
    assert ("operation", 40) in _events(stores, w.subject_pid)  # operation logs 90 days
    assert not {("operation", 100), ("crash", 40)} & set(_events(stores, w.subject_pid))
    on_disk = [f for f in lakes.data_files(stores.lake_dir, "events")]
    old_ops = ds.field("event_type") == "operation"
    assert sum(lakes.rows_in_file(f, lambda t: _old(t, old_ops)) for f in on_disk) == 0  # vacuumed: bytes gone


def _old(table: pa.Table, where: ds.Expression) -> pa.Array:
    from devicerisk.store.rows import mask_where

    return mask_where(
        table, where & (ds.field("event_time") < pa.scalar(world.NOW - timedelta(days=91), pa.timestamp("us", "UTC")))
    )


def test_clause_5_1_2_whole_expired_partitions_are_dropped_without_rewriting(now_grace: Settings) -> None:
    world.build(now_grace)
    stores = stores_for(now_grace)
    purge.purge(stores, world.NOW + timedelta(days=1200))  # every event type has expired on every day
    deletes = [
        h
        for h in DeltaTable(str(lake.table_path(stores.lake_dir, "events"))).history()
        if h.get("operation") == "DELETE"
    ]
    assert deletes and deletes[-1]["operationMetrics"]["num_added_files"] == 0  # the first delete: metadata only
    assert deletes[-1]["operationMetrics"]["num_removed_files"] > 0
    assert lake.dataset(stores.lake_dir, "events").count_rows() == 0


def test_clause_5_1_2_quarantine_and_landing_are_purged_after_their_periods(now_grace: Settings) -> None:
    world.build(now_grace)
    stores = stores_for(now_grace)
    assert purge.purge(stores, world.NOW).removed["landing"] == 0  # committed just now: within 3 days
    assert quarantine.batches(stores.quarantine_dir)
    report = purge.purge(stores, world.NOW + timedelta(days=31))
    assert report.removed["landing"] == 1 and not list((stores.landing_dir / "telemetry").iterdir())
    assert report.removed["quarantine"] == 1 and quarantine.batches(stores.quarantine_dir) == []
    assert retention_check.verify(stores, world.NOW + timedelta(days=31)) == []


def test_clause_5_1_2_landing_retention_has_one_source_for_ingest_purge_and_check(
    now_grace: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The ingest flow's landing purge, the daily purge and the retention check all read the policy's
    ``landing_raw`` period (the contract's, or the retention config's): they cannot disagree."""
    assert not any("landing" in name for name in Settings.model_fields)  # no second setting to drift
    world.build(now_grace)
    config = tmp_path_factory.mktemp("retention") / "retention.toml"
    periods = {**stores_for(now_grace).policy.periods, "landing_raw": 1}
    law = '"law"'
    config.write_text("[periods]\n" + "".join(f"{k} = {law if v is None else v}\n" for k, v in periods.items()))
    stores = stores_for(now_grace.model_copy(update={"retention_config": config}))
    two_days_on = world.NOW + timedelta(days=2)

    def landing_violations() -> list[str]:
        return [v.retention_class for v in retention_check.verify(stores, two_days_on) if v.store == "landing"]

    assert landing_violations() == ["landing_raw"]  # past its 1 day
    removed, others = purge.expire_landing(stores, two_days_on)  # what the ingest flow runs
    assert len(removed) == 1 and others == 0 and not list((stores.landing_dir / "telemetry").iterdir())
    assert landing_violations() == []
    assert purge.expire_landing(stores_for(now_grace), world.NOW + timedelta(days=40)) == ([], 0)  # nothing left


def test_clause_5_1_2_the_daily_purge_starts_where_the_last_one_stopped(now_grace: Settings) -> None:
    world.build(now_grace)
    stores = stores_for(now_grace)
    purge.purge(stores, world.NOW)
    mark = governance.watermarks(stores.warehouse_path)[("lake:events", "operation_log")]
    assert mark == world.NOW.date() - timedelta(days=90)
    assert purge.purge(stores, world.NOW).removed["lake.events"] == 0  # nothing new expired


def test_clause_5_1_2_vacuum_keeps_old_files_for_running_readers_during_the_grace_period(settings: Settings) -> None:
    world.build(settings)  # the default grace: one hour
    stores = stores_for(settings)
    reader = lake.dataset(stores.lake_dir, "events")  # a reader that opened the version before the purge
    rows = reader.count_rows()
    purge.purge(stores, world.NOW)
    assert reader.count_rows() == rows  # its files are still on disk
    assert lake.dataset(stores.lake_dir, "events").count_rows() == rows - 3


def test_clause_2_9_4_legal_hold_suspends_purging_until_released(now_grace: Settings) -> None:
    w = world.build(now_grace)
    stores = stores_for(now_grace)
    placed = holds.place(
        stores,
        world.SUBJECT,
        reason="case 2026-117",
        owner="legal-team",
        expires_at=world.NOW + timedelta(days=30),
        now=world.NOW,
    )
    assert [h.subject_pid for h in placed] == [w.subject_pid]

    report = purge.purge(stores, world.NOW)
    assert report.subjects_held == 1
    assert ("operation", 100) in _events(stores, w.subject_pid)  # kept by the hold
    assert ("operation", 100) not in _events(stores, w.neighbour_pid)  # the neighbour is not held
    assert retention_check.verify(stores, world.NOW) == []  # held rows are not violations

    holds.release(stores, placed[0].hold_id, actor="legal-team", now=world.NOW)
    released = {(v.where, v.retention_class) for v in retention_check.verify(stores, world.NOW)}
    assert released == {
        ("events", "operation_log"),
        ("events", "crash_perf"),
        ("scores", "score"),
        ("models/v7/training.parquet", "model_snapshot"),
    }  # what the hold kept is now overdue
    purge.purge(stores, world.NOW)  # catches up with what the hold kept, behind the watermark
    assert ("operation", 100) not in _events(stores, w.subject_pid)
    assert retention_check.verify(stores, world.NOW) == []
    actions = [r["action"] for r in audit.records(stores.audit_dir)]
    assert actions.count("hold.place") == 1 and actions.count("hold.release") == 1


def test_clause_4_5_4_an_expired_hold_no_longer_protects(now_grace: Settings) -> None:
    w = world.build(now_grace)
    stores = stores_for(now_grace)
    holds.place(
        stores,
        world.SUBJECT,
        reason="case 9",
        owner="legal-team",
        expires_at=world.NOW + timedelta(days=1),
        now=world.NOW,
    )
    purge.purge(stores, world.NOW)
    assert ("operation", 100) in _events(stores, w.subject_pid)
    purge.purge(stores, world.NOW + timedelta(days=2))
    assert ("operation", 100) not in _events(stores, w.subject_pid)


def test_bad_input_hold_without_reason_or_in_the_past_is_refused(now_grace: Settings) -> None:
    world.build(now_grace)
    stores = stores_for(now_grace)
    with pytest.raises(holds.HoldError, match="reason"):
        holds.place(
            stores, world.SUBJECT, reason=" ", owner="legal", expires_at=world.NOW + timedelta(days=1), now=world.NOW
        )
    with pytest.raises(holds.HoldError, match="future"):
        holds.place(stores, world.SUBJECT, reason="x", owner="legal", expires_at=world.NOW, now=world.NOW)
    assert governance.holds(stores.warehouse_path) == []


def test_clause_5_1_2_verify_reports_a_table_without_retention_class(now_grace: Settings) -> None:
    world.build(now_grace)
    stores = stores_for(now_grace)
    write_deltalake(str(stores.lake_dir / "mystery"), pa.table({"account_id_pid": ["0" * 32]}))
    violations = retention_check.verify(stores, world.NOW)
    assert any(v.where == "mystery" and "no retention class" in v.retention_class for v in violations)


def test_clause_5_1_2_verify_reports_a_signal_log_built_from_rows_the_lake_no_longer_has(now_grace: Settings) -> None:
    world.build(now_grace)
    stores = stores_for(now_grace)
    events = lake.dataset(stores.lake_dir, "events").count_rows()
    lakes.drop_partitions(stores.lake_dir, "events", "event_date < '2100-01-01'", "test")  # a delete without a drop

    violations = retention_check.verify(stores, world.NOW)

    assert [(v.store, v.records) for v in violations if v.store == "signals"] == [("signals", events)]
    signals.refresh_log(stores.lake_dir, stores.signals_dir)  # rebuilt from the lake as it is: nothing is stale
    assert not [v for v in retention_check.verify(stores, world.NOW) if v.store == "signals"]


def test_clause_5_1_2_maintenance_clusters_partitions_by_account(now_grace: Settings) -> None:
    from devicerisk.synth import SynthConfig, generate

    generate(now_grace.landing_dir, SynthConfig(accounts=400, days=1, seed=3, events_per_batch=1500))
    from devicerisk.ingest.pipeline import ingest_batches
    from devicerisk.ingest.runtime import ingest_context
    from devicerisk.store import landing

    list(ingest_batches(landing.pending_files(now_grace.landing_dir), ingest_context(now_grace)))
    stores = stores_for(now_grace.model_copy(update={"lake_cluster_file_bytes": 1 << 16}))
    assert lakes.unclustered_dates(
        stores.lake_dir, "events", stores.cluster_file_bytes
    )  # several batches: account ranges overlap
    rows = lake.dataset(stores.lake_dir, "events").count_rows()
    clustered = lakes.cluster(stores.lake_dir, "events", stores.cluster_file_bytes)
    assert clustered >= 1 and lakes.unclustered_dates(stores.lake_dir, "events", stores.cluster_file_bytes) == []
    assert lake.dataset(stores.lake_dir, "events").count_rows() == rows
    files = len(DeltaTable(str(stores.lake_dir / "events")).file_uris())
    one = lakes.read_where(stores.lake_dir, "events", ds.field("account_id_pid").is_valid()).column("account_id_pid")[0]
    subject, schema = SubjectRows(frozenset({one.as_py()})), lakes.schema(stores.lake_dir, "events")
    where = subject.expression(schema)
    assert where is not None
    held = lakes.count_where(stores.lake_dir, "events", where)
    outcome = lakes.delete_where(stores.lake_dir, "events", subject.predicate(schema) or "", where, "test")
    assert outcome.rows == held and 0 < outcome.files_removed < files  # files without the account were skipped
    assert lakes.count_where(stores.lake_dir, "events", where) == 0
    assert lake.dataset(stores.lake_dir, "events").count_rows() == rows - held


def test_clause_5_1_2_old_exports_finished_requests_and_ended_holds_are_purged(now_grace: Settings) -> None:
    from devicerisk.governance import requests
    from devicerisk.governance.requests import RequestKind

    world.build(now_grace)
    stores = stores_for(now_grace)
    row = requests.submit(stores, RequestKind.ACCESS, world.SUBJECT, world.NOW, verification=verified())
    (hold,) = holds.place(
        stores, world.SUBJECT, reason="case 3", owner="legal", now=world.NOW, expires_at=world.NOW + timedelta(days=10)
    )
    holds.release(stores, hold.hold_id, actor="legal", now=world.NOW)
    folder = stores.requests_dir / row.request_id
    exported = [p for p in folder.rglob("*") if p.is_file() and p.name != "receipt.json"]

    later = world.NOW + timedelta(days=31)
    assert any(v.store == "requests" for v in retention_check.verify(stores, later))
    report = purge.purge(stores, later)
    assert report.removed["requests"] == len(exported) > 0
    assert [p.name for p in folder.rglob("*") if p.is_file()] == ["receipt.json"]  # counts only: kept
    assert retention_check.verify(stores, later) == []
    assert governance.requests(stores.warehouse_path) and governance.holds(stores.warehouse_path)

    purge.purge(stores, world.NOW + timedelta(days=1100))
    assert governance.requests(stores.warehouse_path) == [] and governance.holds(stores.warehouse_path) == []
