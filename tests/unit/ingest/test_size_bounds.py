"""Size bounds hold before anything is buffered (issue: no limit on decompressed size).

A 255 KB gzip file holding one 256 MiB line drove ingest to a 2.9 GB peak and wrote a 342 MB
quarantine file. Records over the record bound and batch bytes past the batch bound are quarantined
with a reason; memory stays flat.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from devicerisk.config import Settings
from devicerisk.contract.fields import MAX_RECORD_BYTES
from devicerisk.ingest.pipeline import BatchResult, ingest_batch
from devicerisk.ingest.runtime import ingest_context
from devicerisk.store import lake, quarantine
from factories import event, line, write_batch

_MIB = 1 << 20
_BOMB_LINE_MIB = 256

#: Ingests one file in a fresh process (settings from the environment) and prints its peak RSS and accounting.
_INGEST_ONE = """
import json, resource, sys
from pathlib import Path
from devicerisk.config import Settings
from devicerisk.ingest.pipeline import ingest_batch
from devicerisk.ingest.runtime import ingest_context
result = ingest_batch(Path(sys.argv[1]), ingest_context(Settings()))
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"peak_mib": peak_mib, "accepted": result.accepted, "reasons": result.reasons}))
"""


def _gzip_bomb(path: Path, before: bytes, after: bytes) -> Path:
    """A gzip file of a good record, one record of 256 MiB, and another good record; made without holding it."""
    record = line(event("operation", event_id="evt-bomb"))
    head, tail = record.split(b'"search_text":"')
    tail = b'"search_text":"' + tail
    pack = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [pack.compress(before + b"\n" + head + tail[:15])]
    block = b"x" * _MIB
    parts += [pack.compress(block) for _ in range(_BOMB_LINE_MIB)]
    parts += [pack.compress(tail[15:] + b"\n" + after + b"\n"), pack.flush()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(parts))
    return path


def _ingest_in_subprocess(path: Path, data_dir: Path) -> dict:
    # the record bound is under test here, not the batch's: the bomb's 256 MiB stay within the batch bound
    env = {
        **os.environ,
        "DEVICERISK_DATA_DIR": str(data_dir),
        "PYTHONPATH": os.pathsep.join(sys.path),
        "DEVICERISK_MAX_BATCH_BYTES": str(1 << 30),
    }
    out = subprocess.run(
        [sys.executable, "-c", _INGEST_ONE, str(path)], env=env, capture_output=True, text=True, check=True, timeout=600
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_gzip_bomb_is_quarantined_with_flat_memory(env_settings: Settings) -> None:
    good = [event("operation", event_id="evt-before"), event("transaction", event_id="evt-after")]
    bomb = _gzip_bomb(env_settings.landing_dir / "telemetry" / "bomb.ndjson.gz", line(good[0]), line(good[1]))
    assert bomb.stat().st_size < _MIB  # a small file...
    small = write_batch(env_settings.landing_dir / "telemetry" / "small.ndjson.gz", good, compress=True)

    baseline = _ingest_in_subprocess(small, env_settings.data_dir / "baseline")
    measured = _ingest_in_subprocess(bomb, env_settings.data_dir)

    # ...that inflates to 256 MiB costs no more memory than a small batch (the old path peaked at 2.9 GB)
    assert measured["peak_mib"] - baseline["peak_mib"] < 64, (measured, baseline)
    assert measured["accepted"] == 2
    assert measured["reasons"] == {f"record exceeds {MAX_RECORD_BYTES} bytes": 1}
    [batch] = quarantine.batches(env_settings.quarantine_dir)
    [rejected] = quarantine.read(env_settings.quarantine_dir, batch, ingest_context(env_settings).quarantine_key)
    assert rejected.line == 2 and rejected.raw.startswith(b'{"schema_version":1,"event_id":"evt-bomb"')
    assert len(rejected.raw) == 16 * MAX_RECORD_BYTES  # only the start is kept
    assert (env_settings.quarantine_dir / f"{batch}.records.enc").stat().st_size < 2 * _MIB


def _bounded(settings: Settings, monkeypatch: pytest.MonkeyPatch, name: str, value: int) -> Settings:
    """``settings`` with one bound set through its ``DEVICERISK_`` environment variable."""
    monkeypatch.setenv(f"DEVICERISK_{name.upper()}", str(value))
    bounded = Settings(**settings.model_dump(exclude={name}))
    assert getattr(bounded, name) == value
    return bounded


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_bytes_past_the_batch_bound_are_quarantined_unread(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, compress: bool
) -> None:
    bounded = _bounded(settings, monkeypatch, "max_batch_bytes", _MIB)
    records = [event("operation", event_id=f"evt-{i:05d}") for i in range(2000)]
    data = b"".join(line(r) + b"\n" for r in records)
    assert len(data) > 1.2 * _MIB
    within = data[: data[:_MIB].rfind(b"\n") + 1].count(b"\n")  # the records wholly within the bound
    path = write_batch(settings.landing_dir / "telemetry" / "big.ndjson", records, compress=compress)

    result: BatchResult = ingest_batch(path, ingest_context(bounded))

    reason = f"batch exceeds {_MIB} bytes decompressed: the rest of the file is not read"
    assert (result.records_read, result.accepted, result.quarantined) == (within + 1, within, 1)
    assert result.reasons == {reason: 1}
    assert result.notes == [f"more than {_MIB} bytes decompressed: the rest of the file was not read"]
    ids = lake.dataset(bounded.lake_dir, lake.EVENTS).to_table(columns=["event_id"]).column("event_id").to_pylist()
    assert sorted(ids) == [f"evt-{i:05d}" for i in range(within)]
    [rejected] = quarantine.read(bounded.quarantine_dir, result.batch_id, ingest_context(bounded).quarantine_key)
    assert (rejected.line, rejected.reason) == (within + 1, reason)
    assert data[data[:_MIB].rfind(b"\n") + 1 :].startswith(rejected.raw)


def test_the_record_bound_is_a_setting(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    bounded = _bounded(settings, monkeypatch, "max_record_bytes", 2048)
    good = event("operation")
    long = event("operation")
    long["payload"]["search_text"] = "y" * 2500
    assert len(line(good)) <= 2048 < len(line(long))
    path = write_batch(settings.landing_dir / "telemetry" / "b.ndjson", [good, long])

    result = ingest_batch(path, ingest_context(bounded))

    assert (result.accepted, result.reasons) == (1, {"record exceeds 2048 bytes": 1})
