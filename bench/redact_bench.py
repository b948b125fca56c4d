"""Redaction benchmark: what redacting identifiers from kept text costs ingest, per batch and per candidate.

- On the synthetic batches (the same files as the ingest benchmark): every field the contract redacts, as the
  privacy transform runs it. Reading and parsing are not timed. Compared with the whole transform of the
  same batches, measured in the same run.
- Worst cases on 100,000 distinct page values: each holds an identifier, or each holds a long number that
  the exact checks must reject (the prefilter lets both through).

Usage:

    .venv/bin/python bench/redact_bench.py --accounts 5000 --days 7
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import time
from pathlib import Path

import pyarrow as pa

from devicerisk.contract.fields import FIELDS
from devicerisk.ingest.parse import parse_batch
from devicerisk.ingest.read import read_batch
from devicerisk.privacy.keys import Key
from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.privacy.redact import redact_column, redact_text
from devicerisk.privacy.transform import treat_batch
from ingest_bench import OUT, generate


def _best(fn, repeats: int) -> float:
    """The fastest of ``repeats`` runs of ``fn`` (the redaction cache is emptied before each)."""
    times = []
    for _ in range(repeats):
        redact_text.cache_clear()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def on_batches(paths: list[Path], repeats: int) -> dict[str, float]:
    """Redaction and the whole transform over the parsed batches, in seconds, with the events counted."""
    parsed = [parse_batch(read_batch(p), reread=p).table for p in paths]
    redacted = [f for f in FIELDS if f.redacted]
    pseudonymiser = Pseudonymiser(Key.from_bytes(secrets.token_bytes(32), "pseudonym"))

    columns = [table.column(f.path).combine_chunks() for table in parsed for f in redacted]  # as treat_batch has them

    def redact_all() -> None:
        for column in columns:
            redact_column(column)

    def treat_all() -> None:
        for table in parsed:
            treat_batch(table, pseudonymiser, "bench")

    return {
        "events": sum(t.num_rows for t in parsed),
        "redact_s": _best(redact_all, repeats),
        "transform_s": _best(treat_all, repeats),
    }


def worst_case(rows: int, repeats: int) -> dict[str, float]:
    """Seconds to redact ``rows`` distinct candidate values: all identifiers, then all look-alikes."""
    identifiers = pa.array([f"/user/1391{i:07d}/orders" for i in range(rows)])  # valid CN mobile numbers
    look_alikes = pa.array([f"/order/2026{i:012d}" for i in range(rows)])  # 16 digits: no identifier
    assert redact_column(identifiers.slice(0, 100))[1]["phone"] == 100
    assert not redact_column(look_alikes.slice(0, 100))[1]
    return {
        "rows": rows,
        "identifiers_s": _best(lambda: redact_column(identifiers), repeats),
        "look_alikes_s": _best(lambda: redact_column(look_alikes), repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement; the best counts")
    parser.add_argument("--worst-rows", type=int, default=100_000)
    args = parser.parse_args()

    paths = generate(args.accounts, args.days, args.seed, OUT / "landing")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    batches = on_batches(paths, args.repeats)
    worst = worst_case(args.worst_rows, args.repeats)
    summary = {
        "events": batches["events"],
        "redact_ms_per_100k_events": 1e8 * batches["redact_s"] / batches["events"],
        "transform_ms_per_100k_events": 1e8 * batches["transform_s"] / batches["events"],
        "redact_share_of_transform": batches["redact_s"] / batches["transform_s"],
        "identifier_values_per_s": worst["rows"] / worst["identifiers_s"],
        "look_alike_values_per_s": worst["rows"] / worst["look_alikes_s"],
    }
    print(json.dumps(summary, indent=2))
    (OUT / "redact_results.json").write_text(json.dumps({"summary": summary, "batches": batches, "worst": worst}))


if __name__ == "__main__":
    main()
