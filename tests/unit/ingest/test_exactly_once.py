"""Exactly-once ingest: crashes between writes, re-runs, re-deliveries and overlapping batches."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from devicerisk.config import Settings
from devicerisk.ingest import pipeline
from devicerisk.ingest.pipeline import STEPS, BatchResult, IngestContext, PreparedBatch, ingest_batch
from devicerisk.ingest.runtime import ingest_context
from devicerisk.store import lake, quarantine, warehouse
from factories import event, write_batch


class InjectedCrash(Exception):
    """Raised by a checkpoint to simulate the process dying at that step."""


def _crash_at(step: str) -> pipeline.Checkpoint:
    def checkpoint(current: str) -> None:
        if current == step:
            raise InjectedCrash(step)

    return checkpoint


def _landing(settings: Settings, name: str) -> Path:
    return settings.landing_dir / "telemetry" / name


def _lake_ids(ctx: IngestContext) -> list[str]:
    data = lake.dataset(ctx.lake_dir, lake.EVENTS)
    return [] if data is None else data.to_table(columns=["event_id"]).column("event_id").to_pylist()


def _batch_commits(ctx: IngestContext, batch_id: str) -> list[dict[str, Any]]:
    table = DeltaTable(str(lake.table_path(ctx.lake_dir, lake.EVENTS)))
    return [entry for entry in table.history() if entry.get(lake.BATCH_KEY) == batch_id]


def _assert_accounted(result: BatchResult) -> None:
    total = result.accepted + result.quarantined + result.consent_dropped + result.duplicates
    assert result.records_read == total


def _mixed_batch() -> tuple[list[dict[str, Any] | bytes], set[str]]:
    """Six valid events on two dates (two accounts, one unlogged), one broken line."""
    records: list[dict[str, Any] | bytes] = [
        event("operation"),
        event("transaction", event_time="2026-11-21T09:30:00+08:00"),
        event("device_info", account_id=None),
        b'{"event_id": "broken",',
        event("crash", account_id="acct-000002"),
        event("app_list", event_time="2026-11-21T23:59:59Z"),
        event("account", account_id="acct-000002"),
    ]
    valid = {r["event_id"] for r in records if isinstance(r, dict)}
    return records, valid


@pytest.mark.parametrize("step", STEPS)
def test_crash_at_each_step_then_rerun(step: str, settings: Settings, ctx: IngestContext) -> None:
    """A crash after any write, then a re-run: every valid event exactly once, one commit, right ledger."""
    records, valid = _mixed_batch()
    path = write_batch(_landing(settings, "b1.ndjson"), records)

    with pytest.raises(InjectedCrash):
        ingest_batch(path, ctx, checkpoint=_crash_at(step))
    result = ingest_batch(path, ctx)

    ids = _lake_ids(ctx)
    assert Counter(ids) == Counter(valid)
    batch_id = result.batch_id
    assert len(_batch_commits(ctx, batch_id)) == 1
    entry = warehouse.ledger_entry(ctx.warehouse_path, batch_id)
    assert entry is not None
    counts = (entry.records_read, entry.accepted, entry.quarantined, entry.consent_dropped, entry.duplicates)
    assert counts == (7, 6, 1, 0, 0)
    assert entry.reasons == {"malformed JSON": 1}
    assert entry.lake_version == _batch_commits(ctx, batch_id)[0]["version"]
    assert quarantine.reasons(ctx.quarantine_dir, batch_id) == [{"line": 4, "reason": "malformed JSON"}]
    assert [r.raw for r in quarantine.read(ctx.quarantine_dir, batch_id, ctx.quarantine_key)] == [
        b'{"event_id": "broken",'
    ]
    assert warehouse.summary(ctx.warehouse_path)["batches"] == 1
    if step == "ledger_committed":
        assert result.already_done  # the ledger row was written before the crash
    else:
        assert not result.already_done
        assert (result.accepted, result.duplicates) == (6, 0)
        _assert_accounted(result)


def test_repeated_crashes_then_rerun(settings: Settings, ctx: IngestContext) -> None:
    """Crashing at every step in turn, on the same batch, still ends with each event once."""
    records, valid = _mixed_batch()
    path = write_batch(_landing(settings, "b1.ndjson"), records)
    for step in STEPS[:-1]:
        with pytest.raises(InjectedCrash):
            ingest_batch(path, ctx, checkpoint=_crash_at(step))
    result = ingest_batch(path, ctx)
    assert (result.accepted, result.duplicates, result.already_done) == (6, 0, False)
    assert Counter(_lake_ids(ctx)) == Counter(valid)
    assert len(_batch_commits(ctx, result.batch_id)) == 1


def test_a_crash_recovered_after_many_later_commits(
    settings: Settings, ctx: IngestContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch committed to the lake before a crash, re-run only after more commits than the recent history
    searched first: its rows are found as its own, not counted as duplicates, and not appended again."""
    monkeypatch.setattr(lake, "RECOVERY_LOOKBACK", 2)
    records, valid = _mixed_batch()
    path = write_batch(_landing(settings, "b1.ndjson"), records)
    with pytest.raises(InjectedCrash):
        ingest_batch(path, ctx, checkpoint=_crash_at("lake_committed"))
    for n in range(3):  # three other batches land before the re-run
        other = [event("operation", event_id=str(uuid.uuid4())) for _ in range(2)]
        ingest_batch(write_batch(_landing(settings, f"later{n}.ndjson"), other), ctx)
    batch_id = pipeline.landing.batch_id_of_file(path)
    assert lake.find_batch_commit(ctx.lake_dir, lake.EVENTS, batch_id) is None  # beyond the recent history
    result = ingest_batch(path, ctx)
    assert (result.accepted, result.duplicates, result.already_done) == (6, 0, False)
    _assert_accounted(result)
    assert len(_batch_commits(ctx, batch_id)) == 1
    assert valid <= set(_lake_ids(ctx)) and len(_lake_ids(ctx)) == 6 + 3 * 2


def test_failure_inside_ledger_transaction_rolls_back(
    settings: Settings, ctx: IngestContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If a state update cannot be inserted, the ledger row and earlier state inserts are rolled back too."""
    withdraw = event("account", event_time="2026-11-20T08:00:00+08:00")
    withdraw["payload"] = {"action": "consent", "purpose": "marketing", "granted": False}
    records: list[dict[str, Any] | bytes] = [event("operation"), withdraw, event("transaction")]
    valid = {r["event_id"] for r in records if isinstance(r, dict)}
    path = write_batch(_landing(settings, "b1.ndjson"), records)
    real_prepare = pipeline.prepare_batch

    def broken_prepare(*args: Any, **kwargs: Any) -> PreparedBatch:
        prepared = real_prepare(*args, **kwargs)
        assert prepared.state_updates["consent_decisions"].num_rows == 1
        # consent_decisions is inserted first, then this table fails: no such column in cancellations
        prepared.state_updates["cancellations"] = pa.table({"no_such_column": ["x"]})
        return prepared

    monkeypatch.setattr(pipeline, "prepare_batch", broken_prepare)
    with pytest.raises(Exception, match="no_such_column"):
        ingest_batch(path, ctx)
    batch_id = pipeline.read_batch(path).batch_id
    assert warehouse.ledger_entry(ctx.warehouse_path, batch_id) is None
    assert all(t.num_rows == 0 for t in warehouse.consent_state(ctx.warehouse_path).values())
    assert len(_batch_commits(ctx, batch_id)) == 1  # the lake commit happened before the ledger

    monkeypatch.setattr(pipeline, "prepare_batch", real_prepare)
    result = ingest_batch(path, ctx)
    assert (result.accepted, result.already_done) == (3, False)
    assert Counter(_lake_ids(ctx)) == Counter(valid)
    assert len(_batch_commits(ctx, batch_id)) == 1
    state = warehouse.consent_state(ctx.warehouse_path)
    assert state["consent_decisions"].num_rows == 1
    assert state["cancellations"].num_rows == 0


def test_same_file_twice_is_already_done(settings: Settings, ctx: IngestContext) -> None:
    """Re-ingesting a file does nothing."""
    records, valid = _mixed_batch()
    path = write_batch(_landing(settings, "b1.ndjson"), records)
    first = ingest_batch(path, ctx)
    version = DeltaTable(str(lake.table_path(ctx.lake_dir, lake.EVENTS))).version()

    again = ingest_batch(path, ctx)

    assert again.already_done
    assert again.batch_id == first.batch_id
    assert again.lake_version == first.lake_version
    assert (again.accepted, again.quarantined, again.duplicates) == (0, 0, 0)
    assert DeltaTable(str(lake.table_path(ctx.lake_dir, lake.EVENTS))).version() == version
    assert Counter(_lake_ids(ctx)) == Counter(valid)
    assert warehouse.summary(ctx.warehouse_path)["batches"] == 1


def test_same_content_under_new_name_is_already_done(settings: Settings, ctx: IngestContext) -> None:
    """A batch is identified by its content, not its file name."""
    records, valid = _mixed_batch()
    first_path = write_batch(_landing(settings, "b1.ndjson"), records)
    first = ingest_batch(first_path, ctx)
    copy = _landing(settings, "b1-redelivered.ndjson")
    copy.write_bytes(first_path.read_bytes())

    again = ingest_batch(copy, ctx)

    assert again.already_done
    assert again.batch_id == first.batch_id
    assert Counter(_lake_ids(ctx)) == Counter(valid)
    entry = warehouse.ledger_entry(ctx.warehouse_path, first.batch_id)
    assert entry is not None and entry.file_name == "b1.ndjson"
    assert warehouse.summary(ctx.warehouse_path)["batches"] == 1


def test_overlapping_batch_counts_duplicates(settings: Settings, ctx: IngestContext) -> None:
    """A batch that repeats half of an earlier batch's events adds only the new ones."""
    old = [event("operation") for _ in range(4)]
    new = [event("operation") for _ in range(3)]
    first = ingest_batch(write_batch(_landing(settings, "b1.ndjson"), old), ctx)
    second = ingest_batch(write_batch(_landing(settings, "b2.ndjson"), [*old[2:], *new]), ctx)

    assert (first.accepted, first.duplicates) == (4, 0)
    assert (second.records_read, second.accepted, second.duplicates, second.quarantined) == (5, 3, 2, 0)
    _assert_accounted(second)
    assert Counter(_lake_ids(ctx)) == Counter(r["event_id"] for r in [*old, *new])
    entry = warehouse.ledger_entry(ctx.warehouse_path, second.batch_id)
    assert entry is not None and (entry.accepted, entry.duplicates) == (3, 2)


def test_duplicates_inside_one_batch_keep_the_first(settings: Settings, ctx: IngestContext) -> None:
    """Repeated event ids in one batch: the first occurrence is kept, the others counted as duplicates."""
    first = event("operation", event_id="dup-1")
    first["payload"]["page"] = "first"
    second = event("operation", event_id="dup-1")
    second["payload"]["page"] = "second"
    third = event("operation", event_id="dup-1")
    third["payload"]["page"] = "third"
    other = event("operation")
    path = write_batch(_landing(settings, "b1.ndjson"), [first, other, second, third])

    result = ingest_batch(path, ctx)

    assert (result.records_read, result.accepted, result.duplicates) == (4, 2, 2)
    _assert_accounted(result)
    data = lake.dataset(ctx.lake_dir, lake.EVENTS)
    assert data is not None
    rows = data.to_table(columns=["event_id", "page"]).to_pylist()
    assert Counter(r["event_id"] for r in rows) == Counter({"dup-1": 1, other["event_id"]: 1})
    assert next(r["page"] for r in rows if r["event_id"] == "dup-1") == "first"


def test_first_unseen_keeps_first_occurrence_of_new_ids() -> None:
    """The dedup mask: first occurrence of each id not already seen."""
    mask = pipeline.first_unseen(pa.array(["a", "b", "a", "c", "b"]), pa.array(["c", "z"]))
    assert mask.to_pylist() == [True, True, False, False, False]


def test_first_unseen_ignores_null_ids_already_seen() -> None:
    """A null id in the lake must not make every new id look seen."""
    mask = pipeline.first_unseen(pa.array(["a", "b", "a"]), pa.array(["c", None], pa.string()))
    assert mask.to_pylist() == [True, True, False]


@given(st.lists(st.sampled_from("abcdef"), max_size=12), st.lists(st.sampled_from("abcdefgh"), max_size=12))
def test_not_seen_matches_set_membership(batch: list[str], seen: list[str]) -> None:
    """The probe-the-smaller-side shortcut gives exactly the ids absent from ``seen``."""
    mask = pipeline.not_seen(pa.array(batch, pa.string()), pa.array(seen, pa.string()))
    assert mask.to_pylist() == [i not in set(seen) for i in batch]


_EVENTS = 8
_split = st.lists(
    st.lists(st.integers(0, _EVENTS - 1), min_size=0, max_size=_EVENTS, unique=True), min_size=1, max_size=3
)


@hyp_settings(
    max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=_split,
    order=st.randoms(use_true_random=False),
    crashes=st.lists(st.sampled_from((None, *STEPS)), min_size=3, max_size=3),
)
def test_overlapping_batches_in_any_order(
    batches: list[list[int]], order: Any, crashes: list[str | None], settings: Settings
) -> None:
    """Random overlapping batches in random order, some crashing once before a re-run.

    Each id ends up once in the lake and the ledger's accepted counts sum to the distinct ids.
    """
    ctx = ingest_context(settings.model_copy(update={"data_dir": settings.data_dir / uuid.uuid4().hex}))
    times = ["2026-11-20T10:00:00+08:00", "2026-11-21T10:00:00+08:00"]
    records = [event("operation", event_id=f"p-{i}", event_time=times[i % 2]) for i in range(_EVENTS)]
    batches = list(batches)
    order.shuffle(batches)
    for n, members in enumerate(batches):
        landing = ctx.lake_dir.parent / "landing" / "telemetry" / f"batch-{n}.ndjson"
        path = write_batch(landing, [records[i] for i in members])
        crash = crashes[n]
        if crash is not None:
            try:
                ingest_batch(path, ctx, checkpoint=_crash_at(crash))
            except InjectedCrash:
                pass
            else:
                assert warehouse.ledger_entry(ctx.warehouse_path, pipeline.read_batch(path).batch_id) is not None
        result = ingest_batch(path, ctx)
        if not result.already_done:
            _assert_accounted(result)

    distinct = {f"p-{i}" for members in batches for i in members}
    assert Counter(_lake_ids(ctx)) == Counter(distinct)
    ledger = warehouse.ledger(ctx.warehouse_path).to_pylist()
    assert sum(row["accepted"] for row in ledger) == len(distinct)
    assert sum(row["duplicates"] for row in ledger) == sum(row["records_read"] for row in ledger) - len(distinct)
    assert len(ledger) == len({tuple(m) for m in batches})  # identical contents are one batch
