"""File-level row deletes on real Delta tables: which files are rewritten, what is left, and how it is committed."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from devicerisk.store import lake, lake_rewrite

NAME = "events"
DAYS = (date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3))
SCHEMA = pa.schema(
    [
        ("event_date", pa.date32()),
        ("event_id", pa.string()),
        ("account", pa.string()),
        ("amount", pa.float64()),
        ("event_time", pa.timestamp("us", tz="UTC")),
    ]
)
#: Accounts per batch: every batch writes one file per day, so the first batch's files hold a and c
#: (statistics admit b too), the second's d and e.
ACCOUNTS = {1: ("acct-a", "acct-c"), 2: ("acct-d", "acct-e")}


def _rows(batch: int, day: date) -> pa.Table:
    accounts = ACCOUNTS[batch]
    start = datetime(day.year, day.month, day.day, 8, tzinfo=UTC)
    return pa.table(
        {
            "event_date": [day] * len(accounts),
            "event_id": [f"e{batch}-{day.isoformat()}-{a}" for a in accounts],
            "account": list(accounts),
            "amount": [10.0 * batch + i for i in range(len(accounts))],
            "event_time": [start + timedelta(minutes=i, microseconds=batch) for i in range(len(accounts))],
        },
        schema=SCHEMA,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A lake table of two batches over three days: six files, one per batch and day."""
    lake.create(tmp_path, NAME, SCHEMA)
    for batch in ACCOUNTS:
        lake.append(tmp_path, NAME, pa.concat_tables([_rows(batch, day) for day in DAYS]), f"b{batch}", {})
    return lake.table_path(tmp_path, NAME)


def _open(root: Path, version: int | None = None) -> DeltaTable:
    return DeltaTable(str(root), version=version)


def _rows_now(root: Path, version: int | None = None) -> list[dict[str, Any]]:
    return sorted(_open(root, version).to_pyarrow_dataset().to_table().to_pylist(), key=lambda r: r["event_id"])


def _files(root: Path) -> dict[str, tuple[date, str, str]]:
    """Path -> (partition date, smallest and largest account) of each file of the current version."""
    flat = pa.table(_open(root).get_add_actions(flatten=True))
    return {
        p: (d, lo, hi)
        for p, d, lo, hi in zip(
            *(flat.column(c).to_pylist() for c in ("path", "partition.event_date", "min.account", "max.account")),
            strict=True,
        )
    }


def _delete(root: Path, pruning: lake_rewrite.Pruning, where: ds.Expression) -> tuple[int, int, int, int]:
    return lake_rewrite.rewrite_without(_open(root), root, pruning, where, "test-delete")


def _account(*names: str) -> lake_rewrite.FileFilter:
    return lake_rewrite.may_hold({"account": frozenset(names)})


def test_only_files_holding_matching_rows_are_rewritten(root: Path) -> None:
    before, rows_before = _files(root), _rows_now(root)
    first_batch = {p for p, (_, lo, _) in before.items() if lo == "acct-a"}
    assert len(first_batch) == len(DAYS)

    deleted, removed, added, size = _delete(root, _account("acct-a"), ds.field("account") == "acct-a")

    after = _files(root)
    assert (deleted, removed, added) == (len(DAYS), len(DAYS), len(DAYS))
    assert size == sum((root / p).stat().st_size for p in first_batch)
    assert set(before) - first_batch <= set(after)  # the second batch's files keep their paths
    assert not first_batch & set(after)
    assert _rows_now(root) == [r for r in rows_before if r["account"] != "acct-a"]


def test_a_file_whose_rows_all_match_is_removed_without_a_replacement(root: Path) -> None:
    where = ds.field("account").isin(["acct-a", "acct-c"]) & (ds.field("event_date") == DAYS[0])
    deleted, removed, added, _ = _delete(root, lake_rewrite.partition_between("event_date", None, DAYS[1]), where)

    assert (deleted, removed, added) == (2, 1, 0)
    assert len(_files(root)) == 2 * len(DAYS) - 1
    assert {r["account"] for r in _rows_now(root) if r["event_date"] == DAYS[0]} == {"acct-d", "acct-e"}


def test_rewritten_files_keep_plain_strings_and_filtered_reads_work(root: Path) -> None:
    before = set(_files(root))
    _delete(root, _account("acct-a"), ds.field("account") == "acct-a")

    for path in set(_files(root)) - before:
        schema = pq.read_schema(root / path)
        assert schema.field("account").type == pa.string() and schema.field("event_id").type == pa.string()
    kept = _open(root).to_pyarrow_dataset().to_table(filter=ds.field("account") == "acct-c")
    assert kept.num_rows == len(DAYS)


def _string_view_files(root: Path) -> list[str]:
    return [p for p in _files(root) if pa.types.is_string_view(pq.read_schema(root / p).field("account").type)]


def test_a_file_left_by_deltas_own_delete_comes_back_with_plain_strings(root: Path) -> None:
    more = ["acct-x1", "acct-x2", "acct-x3"]
    at = datetime(2026, 11, 1, 12, tzinfo=UTC)
    rows = pa.table(
        {"event_date": [DAYS[0]] * 3, "event_id": more, "account": more, "amount": [1.0] * 3, "event_time": [at] * 3},
        schema=SCHEMA,
    )
    lake.append(root.parent, NAME, rows, "b3", {})
    _open(root).delete("account = 'acct-x1'")  # Delta's delete writes string views
    assert _string_view_files(root)  # the reason this module exists

    deleted, removed, added, _ = _delete(root, _account("acct-x2"), ds.field("account") == "acct-x2")

    assert (deleted, removed, added) == (1, 1, 1)
    assert not _string_view_files(root)
    kept = _open(root).to_pyarrow_dataset().to_table(filter=ds.field("account") == "acct-x3")
    assert kept.column("event_id").to_pylist() == ["acct-x3"]


def test_one_rewrite_is_one_commit_tagged_with_its_action(root: Path) -> None:
    version = _open(root).version()
    deleted, removed, *_ = _delete(root, _account("acct-a", "acct-d"), ds.field("account").isin(["acct-a", "acct-d"]))

    table = _open(root)
    assert removed == 2 * len(DAYS) and deleted == 2 * len(DAYS)  # six files in three partitions...
    assert table.version() == version + 1  # ...in one commit
    assert table.history(1)[0][lake_rewrite.ACTION_KEY] == "test-delete"


@pytest.mark.parametrize("account", ["acct-b", "acct-z"], ids=["admitted-by-statistics", "no-candidate"])
def test_a_delete_that_matches_nothing_commits_nothing(root: Path, account: str) -> None:
    version, files = _open(root).version(), _files(root)

    assert _delete(root, _account(account), ds.field("account") == account) == (0, 0, 0, 0)

    assert _open(root).version() == version and _files(root) == files


def test_old_versions_still_read_their_rows(root: Path) -> None:
    version, rows = _open(root).version(), _rows_now(root)
    _delete(root, _account("acct-a"), ds.field("account") == "acct-a")

    assert _rows_now(root, version) == rows
    assert len(_rows_now(root)) == len(rows) - len(DAYS)


def test_partition_filters_choose_files_by_partition(root: Path) -> None:
    table = _open(root)

    def days(pruning: lake_rewrite.Pruning) -> list[date]:
        return sorted(c["partition"]["event_date"] for c in lake_rewrite.candidates(table, pruning))

    assert days(lake_rewrite.partition_between("event_date", DAYS[1], DAYS[2])) == [DAYS[1]] * 2
    assert days(lake_rewrite.partition_between("event_date", None, DAYS[2])) == [DAYS[0]] * 2 + [DAYS[1]] * 2
    assert days(f"event_date >= '{DAYS[1]}' AND event_date < '{DAYS[2]}'") == [DAYS[1]] * 2  # Delta's own pruning
    either = lake_rewrite.any_of(lake_rewrite.partition_between("event_date", None, DAYS[1]), _account("acct-e"))
    assert days(either) == [DAYS[0], DAYS[0], DAYS[1], DAYS[2]]


def test_a_partition_filter_limits_the_delete_to_its_partitions(root: Path) -> None:
    pruning = lake_rewrite.partition_between("event_date", DAYS[1], DAYS[2])
    deleted, removed, _, _ = _delete(root, pruning, ds.field("account") == "acct-a")

    assert (deleted, removed) == (1, 1)
    assert sorted(r["event_date"] for r in _rows_now(root) if r["account"] == "acct-a") == [DAYS[0], DAYS[2]]


def test_rewritten_files_carry_statistics_that_later_pruning_reads(root: Path) -> None:
    before = set(_files(root))
    _delete(root, _account("acct-a"), ds.field("account") == "acct-a")

    rewritten = {p: v for p, v in _files(root).items() if p not in before}
    assert len(rewritten) == len(DAYS)
    assert {(lo, hi) for _, lo, hi in rewritten.values()} == {("acct-c", "acct-c")}
    assert not {c["path"] for c in lake_rewrite.candidates(_open(root), _account("acct-b"))}  # c..c excludes b


def test_file_stats_describe_the_rows() -> None:
    times = [datetime(2026, 11, 1, 8, 0, 0, 123456, tzinfo=UTC), datetime(2026, 11, 2, 9, tzinfo=UTC)]
    rows = pa.table(
        {
            "account": ["acct-b", None],
            "amount": [2.5, -1.0],
            "n": pa.array([3, 7], pa.int32()),
            "event_time": pa.array(times, pa.timestamp("us", tz="UTC")),
            "day": pa.array([date(2026, 11, 2), date(2026, 11, 1)], pa.date32()),
            "flag": [True, False],
            "empty": pa.nulls(2, pa.string()),
        }
    )
    stats = json.loads(lake_rewrite.file_stats(rows))

    assert stats["numRecords"] == 2
    assert stats["nullCount"] == {"account": 1, "amount": 0, "n": 0, "event_time": 0, "day": 0, "flag": 0, "empty": 2}
    assert stats["minValues"] == {
        "account": "acct-b",
        "amount": -1.0,
        "n": 3,
        "event_time": "2026-11-01T08:00:00.123Z",
        "day": "2026-11-01",
    }
    assert stats["maxValues"]["event_time"] == "2026-11-02T09:00:00.000Z" and stats["maxValues"]["n"] == 7


def test_file_stats_cover_the_first_columns_only() -> None:
    rows = pa.table({f"c{i:02d}": [i] for i in range(lake_rewrite.STATS_COLUMNS + 3)})
    stats = json.loads(lake_rewrite.file_stats(rows))
    assert list(stats["nullCount"]) == [f"c{i:02d}" for i in range(lake_rewrite.STATS_COLUMNS)]
    assert list(stats["minValues"]) == list(stats["nullCount"])


def test_an_unpartitioned_table_is_rewritten_too(tmp_path: Path) -> None:
    rows = pa.table({"event_id": ["e1", "e2", "e3"], "account": ["acct-a", "acct-c", "acct-a"]})
    write_deltalake(str(tmp_path), rows)

    result = lake_rewrite.rewrite_without(
        _open(tmp_path), tmp_path, "account = 'acct-a'", ds.field("account") == "acct-a", "test-delete"
    )

    assert result[:3] == (2, 1, 1)
    assert _open(tmp_path).to_pyarrow_dataset().to_table().column("event_id").to_pylist() == ["e2"]


def test_two_rewrites_of_one_file_from_one_version_cannot_both_commit(root: Path) -> None:
    """The second would bring back the rows the first deleted: Delta refuses it."""
    first, second = _open(root), _open(root)
    lake_rewrite.rewrite_without(first, root, _account("acct-a"), ds.field("account") == "acct-a", "one")

    with pytest.raises(CommitFailedError):
        lake_rewrite.rewrite_without(second, root, _account("acct-c"), ds.field("account") == "acct-c", "two")

    assert {r["account"] for r in _rows_now(root)} == {"acct-c", "acct-d", "acct-e"}


def test_a_time_without_a_zone_is_recorded_as_utc_whatever_the_machines_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """File statistics prune deletes: a naive time read as local time would shift them by the machine's offset."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        assert lake_rewrite._stat(datetime(2026, 11, 3, 10, 0)) == "2026-11-03T10:00:00.000Z"
        assert lake_rewrite._stat(datetime(2026, 11, 3, 10, 0, tzinfo=UTC)) == "2026-11-03T10:00:00.000Z"
    finally:
        monkeypatch.undo()
        time.tzset()
