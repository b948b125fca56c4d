"""Retention benchmark: erasing one subject and the daily purge on a 90-day lake of 10M+ events.

The lake is written with the lake's schema through ``store/lake.py`` as ingest writes it (one append
per batch of 100,000 time-ordered events, partitioned by ``event_date``), then clustered by the daily
maintenance (``lake_maintenance.cluster``). It is built once in a folder outside the repository and
reused. Measured in the same run:

- erasure of a subject active on every day (touching all 90 partitions): on the clustered layout, on
  the ingest layout (no maintenance), and a full rewrite of the table without the subject;
- completeness: every Parquet file in the table folder is read (not only the current version) before
  and after the vacuum, and the vacuum is timed;
- the daily purge (watermarked, the day after a catch-up) against the catch-up purge that scans
  every expired day.

Usage:

    .venv/bin/python bench/retention_bench.py --events 10000000 --days 90 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import secrets
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, WriterProperties, write_deltalake

from devicerisk.config import Settings
from devicerisk.contract.schema import lake_schema
from devicerisk.governance import purge, subject_data
from devicerisk.governance.stores import Stores, stores_for
from devicerisk.store import lake
from devicerisk.store import lake_maintenance as lakes
from devicerisk.store.rows import SubjectRows

ROOT = Path("/tmp/devicerisk-retention-bench")
BATCH = 100_000
HEAVY = 8  # accounts active on every day, erased one per repeat
TYPES = np.array(["operation", "device_info", "transaction", "crash", "app_list", "account"])
TYPE_P = np.array([0.60, 0.10, 0.10, 0.08, 0.07, 0.05])


def pids(n: int, rng: np.random.Generator) -> pa.Array:
    """``n`` random 32-hex pseudonyms."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    return pa.array([row.tobytes().hex() for row in raw], pa.string())


def day_events(
    day: date, n: int, accounts: dict[str, pa.Array], weights: np.ndarray, rng: np.random.Generator
) -> pa.Table:
    """One day of treated events in the lake's schema (the columns risk reads filled, the rest null)."""
    schema = lake_schema()
    n_acc = len(accounts["account_id_pid"])
    heavy = np.repeat(np.arange(HEAVY), 20)  # every heavy account has 20 events each day
    who = np.concatenate([heavy, HEAVY + rng.choice(n_acc - HEAVY, n - len(heavy), p=weights)])
    seconds = np.sort(rng.integers(0, 86_400, n))
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    idx = pa.array(who)
    cols: dict[str, Any] = {
        "schema_version": pa.array(np.ones(n, np.int64)),
        "event_id": pa.array([f"e{day:%Y%m%d}-{i:07d}" for i in range(n)]),
        "event_type": pa.array(rng.choice(TYPES, n, p=TYPE_P)),
        "event_time": pa.array([start + timedelta(seconds=int(s)) for s in seconds], pa.timestamp("us", "UTC")),
        "app_platform": pa.array(np.where(rng.random(n) < 0.8, "android", "ios")),
        "app_version": pa.array(rng.choice(["5.2.1", "5.2.0", "5.1.9"], n)),
        "device_model": pa.array(rng.choice(["23127PN0CC", "SM-S9180", "iPhone15,2", "V2309A"], n)),
        "network_type": pa.array(rng.choice(["wifi", "4g", "5g"], n)),
        "network_ip_prefix": pa.array(rng.choice([f"203.0.{i}.0/24" for i in range(200)], n)),
        "action": pa.array(rng.choice(["view", "click", "search"], n)),
        "amount": pa.array(np.round(rng.gamma(2.0, 80.0, n), 2)),
        "event_date": pa.array([day] * n, pa.date32()),
        "batch_id": pa.array([f"{day:%Y%m%d}".ljust(32, "0")] * n),
        "key_id": pa.array(["bench0000000"] * n),
        "ingested_at": pa.array([start + timedelta(days=1)] * n, pa.timestamp("us", "UTC")),
    }
    for name, values in accounts.items():
        cols[name] = values.take(idx)
    arrays = [cols[f.name] if f.name in cols else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema).sort_by("event_time")


def build(events: int, days: int, seed: int) -> tuple[Path, list[str], date]:
    """The ingest-layout lake (built once and reused): its folder, the heavy accounts, and its last day."""
    folder = ROOT / f"ingest-{events}-{days}-{seed}"
    meta = folder / "meta.json"
    if meta.exists():
        info = json.loads(meta.read_text())
        return folder / "lake", info["heavy"], date.fromisoformat(info["last_day"])
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(seed)
    n_acc = max(events // 50, 1000)
    device_columns = (
        "device_imei_pid",
        "device_mac_pid",
        "device_oaid_pid",
        "device_android_id_pid",
        "device_imsi_pid",
        "device_iccid_pid",
        "network_ip_pid",
    )
    accounts = {"account_id_pid": pids(n_acc, rng), **{c: pids(n_acc, rng) for c in device_columns}}
    weights = rng.lognormal(0.0, 1.0, n_acc - HEAVY)  # some accounts are much busier than others
    weights /= weights.sum()
    last = date.today() - timedelta(days=1)
    per_day = events // days + 1
    start = time.perf_counter()
    pending: list[pa.Table] = []
    buffered = 0
    for d in range(days):
        pending.append(day_events(last - timedelta(days=days - 1 - d), per_day, accounts, weights, rng))
        buffered += per_day
        while buffered >= BATCH or (d == days - 1 and buffered):
            table = pa.concat_tables(pending)
            batch, rest = table.slice(0, BATCH), table.slice(BATCH)
            lake.append(folder / "lake", lake.EVENTS, batch, f"b{time.perf_counter_ns():x}"[:32], {})
            pending, buffered = ([rest] if rest.num_rows else []), rest.num_rows
    print(f"wrote {per_day * days:,} events in {time.perf_counter() - start:.0f} s")
    heavy = accounts["account_id_pid"].slice(0, HEAVY).to_pylist()
    meta.write_text(json.dumps({"heavy": heavy, "last_day": last.isoformat()}))
    return folder / "lake", heavy, last


def table_bytes(lake_dir: Path) -> tuple[int, int]:
    """(bytes, files) of the current version of the events table."""
    actions = pa.table(DeltaTable(str(lake_dir / "events")).get_add_actions(flatten=True))
    return int(pc.sum(actions.column("size_bytes")).as_py()), actions.num_rows


def stores_at(data_dir: Path, grace_hours: int, cluster_bytes: int) -> Stores:
    secrets_dir = ROOT / "secrets"
    secrets_dir.mkdir(parents=True, exist_ok=True)
    for name in ("pseudonym", "quarantine", "audit"):
        if not (secrets_dir / f"{name}.key").exists():
            (secrets_dir / f"{name}.key").write_text(secrets.token_hex(32))
    return stores_for(
        Settings(
            mode="production",
            data_dir=data_dir,
            secrets_dir=secrets_dir,
            pseudonym_key_file=secrets_dir / "pseudonym.key",
            quarantine_key_file=secrets_dir / "quarantine.key",
            audit_key_file=secrets_dir / "audit.key",
            vacuum_grace_hours=grace_hours,
            lake_cluster_file_bytes=cluster_bytes,
        )
    )


def erase(stores: Stores, account: str) -> dict[str, Any]:
    subject = SubjectRows(frozenset({account}))
    total_bytes, total_files = table_bytes(stores.lake_dir)
    start = time.perf_counter()
    outcome = subject_data.erase_lake(stores, subject, "bench.erasure")
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 3),
        "rows": outcome.rows,
        "files_rewritten": outcome.files_removed,
        "files_total": total_files,
        "bytes_rewritten": outcome.bytes_rewritten,
        "bytes_total": total_bytes,
    }


def full_rewrite(lake_dir: Path, account: str) -> dict[str, Any]:
    """The reference: rewrite the whole table without the subject (what a layout without skipping costs)."""
    total_bytes, total_files = table_bytes(lake_dir)
    table = DeltaTable(str(lake_dir / "events"))
    start = time.perf_counter()
    data = table.to_pyarrow_dataset().to_table()
    keep = pc.invert(pc.fill_null(pc.equal(data.column("account_id_pid"), account), False))
    write_deltalake(
        table,
        data.filter(keep),
        mode="overwrite",
        partition_by=["event_date"],
        writer_properties=WriterProperties(compression="ZSTD"),
    )
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 3),
        "files_rewritten": total_files,
        "bytes_rewritten": total_bytes,
        "bytes_total": total_bytes,
        "rows": data.num_rows - pc.sum(keep).as_py(),
    }


def on_disk(stores: Stores, account: str) -> tuple[int, int, float]:
    """(rows of the subject, Parquet files read, seconds) over every file in the table folder."""
    subject = SubjectRows(frozenset({account}))
    files = lakes.data_files(stores.lake_dir, "events")
    start = time.perf_counter()
    rows = sum(lakes.rows_in_file(p, subject.mask, subject.columns) for p in files)
    return rows, len(files), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cluster-bytes", type=int, default=512 << 10)
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''}, Python {platform.python_version()}")
    base, heavy, last = build(args.events, args.days, args.seed)
    results: dict[str, Any] = {"events": args.events, "days": args.days}

    clustered_base = base.parent.parent / f"{base.parent.name.replace('ingest', 'clustered')}-{args.cluster_bytes}"
    if not (clustered_base / "done").exists():  # the daily maintenance, run over every partition once
        shutil.rmtree(clustered_base, ignore_errors=True)
        shutil.copytree(base, clustered_base / "lake")
        start = time.perf_counter()
        parts = lakes.cluster(clustered_base / "lake", "events", args.cluster_bytes)
        lakes.vacuum(clustered_base / "lake", "events", timedelta(0))
        info = {"partitions": parts, "seconds": round(time.perf_counter() - start, 1)}
        (clustered_base / "done").write_text(json.dumps(info))
    results["cluster"] = json.loads((clustered_base / "done").read_text())
    print("clustered:", results["cluster"])
    ingest_layout = ROOT / "run" / "ingest" / "data"
    clustered = ROOT / "run" / "clustered" / "data"
    for source, target in ((base, ingest_layout), (clustered_base / "lake", clustered)):
        shutil.rmtree(target.parent, ignore_errors=True)
        shutil.copytree(source, target / "lake")
    c_stores = stores_at(clustered, 1, args.cluster_bytes)
    i_stores = stores_at(ingest_layout, 1, args.cluster_bytes)
    results["cluster"]["files_after"] = table_bytes(c_stores.lake_dir)[1]

    rounds: dict[str, list[dict[str, Any]]] = {"clustered": [], "ingest_layout": []}
    for r in range(args.repeats):  # interleaved, a different heavy subject each round
        rounds["clustered"].append(erase(c_stores, heavy[r]))
        rounds["ingest_layout"].append(erase(i_stores, heavy[r]))
        print(f"round {r}: clustered {rounds['clustered'][-1]}, ingest layout {rounds['ingest_layout'][-1]}")
    results["erasure"] = rounds
    results["full_rewrite"] = full_rewrite(i_stores.lake_dir, heavy[args.repeats])
    print("full rewrite:", results["full_rewrite"])

    before = on_disk(c_stores, heavy[0])
    start = time.perf_counter()
    vacuumed = lakes.vacuum(c_stores.lake_dir, "events", timedelta(0))  # as the vacuum after the grace period
    vacuum_seconds = time.perf_counter() - start
    after = on_disk(c_stores, heavy[0])
    results["completeness"] = {
        "rows_on_disk_before_vacuum": before[0],
        "files_read_before": before[1],
        "scan_seconds": round(before[2], 2),
        "files_vacuumed": vacuumed,
        "vacuum_seconds": round(vacuum_seconds, 2),
        "rows_on_disk_after_vacuum": after[0],
        "files_read_after": after[1],
    }
    print("completeness:", results["completeness"])

    now = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=3)
    start = time.perf_counter()
    catch_up = purge.purge(c_stores, now)
    results["purge_catch_up"] = {"seconds": round(time.perf_counter() - start, 3), "removed": catch_up.removed}
    daily = []
    for r in range(args.repeats):
        start = time.perf_counter()
        report = purge.purge(c_stores, now + timedelta(days=r + 1))
        daily.append(
            {
                "seconds": round(time.perf_counter() - start, 3),
                "removed": report.removed,
                "vacuumed": report.files_vacuumed,
            }
        )
    results["purge_daily"] = daily
    print("purge catch-up:", results["purge_catch_up"], "\ndaily:", daily)
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "retention_bench.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
