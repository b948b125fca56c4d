"""The lake in S3-compatible object storage: a local S3 endpoint (moto's server, a separate process on loopback)
holds the events table that the exactly-once ingest writes, deduplicates against and finds its commits in."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import ingest_batches
from devicerisk.ingest.runtime import ingest_context
from devicerisk.runtime import LocalLakeOnly, build
from devicerisk.store import lake
from factories import alive, event, free_port, write_batch

BUCKET = "devicerisk-lake"


@pytest.fixture
def s3() -> Iterator[dict[str, str]]:
    """A local S3 endpoint with an empty bucket; yields deltalake's storage options for it. Stopped afterwards."""
    import boto3

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # in a process of its own: deltalake holds the GIL on some calls, and a server thread here would wait on it
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
                break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < deadline and server.poll() is None, "the S3 endpoint did not start"
                time.sleep(0.2)
        credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
        boto3.client("s3", endpoint_url=url, **credentials).create_bucket(Bucket=BUCKET)
        yield {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
            "AWS_S3_ALLOW_UNSAFE_RENAME": "true",  # one writer at a time: the warehouse lock serialises commits
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
        assert not alive(server.pid)


def test_ingest_writes_and_reads_the_events_table_in_object_storage(
    settings: Settings, s3: dict[str, str], tmp_path: Path
) -> None:
    remote = settings.model_copy(update={"lake_uri": f"s3://{BUCKET}/lake", "lake_storage_options": s3})
    ctx = ingest_context(remote)
    assert isinstance(ctx.lake_dir, lake.ObjectStore) and "test" not in repr(ctx.lake_dir)  # options never shown
    records = [event("transaction"), event("operation"), event("device_info")]
    folder = remote.landing_dir / "telemetry"
    first = write_batch(folder / "batch-1.ndjson", records)
    again = write_batch(folder / "batch-2.ndjson", [*records[:2], b"{not json\n"])  # two repeats, one bad

    results = list(ingest_batches([first, again], ctx))
    assert [(r.accepted, r.duplicates, r.quarantined) for r in results] == [(3, 0, 0), (0, 2, 1)]
    table = lake.open_table(ctx.lake_dir, lake.EVENTS)
    assert table is not None and table.version() == results[0].lake_version  # the second batch added nothing
    rows = lake.dataset(ctx.lake_dir, lake.EVENTS).to_table(columns=["event_id"]).column("event_id").to_pylist()
    assert sorted(rows) == sorted(r["event_id"] for r in records)
    assert lake.find_batch_commit(ctx.lake_dir, lake.EVENTS, results[0].batch_id) is not None
    assert not (remote.data_dir / "lake").exists()  # nothing went to the local lake folder
    assert list(ingest_batches([first, again], ctx)) == []  # a re-run finds both in the ledger

    with pytest.raises(LocalLakeOnly):  # the flows' runtime refuses a lake its other readers would not see
        build(remote)
