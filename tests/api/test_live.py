"""The service while the stores change under it, over real HTTP to uvicorn on a copy of the demo lake: a snapshot
republished again and again under load, and an erasure carried out while lookups run. No request fails."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from devicerisk.api.app import create_app
from devicerisk.config import Settings
from devicerisk.governance import requests
from devicerisk.governance.stores import stores_for
from devicerisk.governance.subjects import Identifiers
from devicerisk.store import api_keys, serving
from factories import served, served_transaction, verified


@pytest.fixture(scope="module")
def live(lookup_lake: Settings) -> Iterator[dict[str, Any]]:
    settings = lookup_lake.model_copy(update={"vacuum_grace_hours": 0})  # erasures complete at once
    keys = {role: api_keys.create(settings.api_keys_path, role, f"{role}-v")[1] for role in api_keys.ROLES}
    app = create_app(settings)
    with served(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        client.headers.update({"X-API-Key": keys["fraud_analyst"], "X-Purpose": "risk_control"})
        yield {"client": client, "url": url, "keys": keys, "settings": settings, "app": app}


def _hammer(
    url: str, key: str, paths: list[str], stop: threading.Event, out: list[tuple[str, int, Any, float]]
) -> None:
    """Request ``paths`` in turn until ``stop``; every answer (or transport error) goes to ``out`` with the time the
    request started."""
    headers = {"X-API-Key": key, "X-Purpose": "risk_control"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        while not stop.is_set():
            for path in paths:
                started = time.monotonic()
                try:
                    answer = client.get(path)
                    out.append((path, answer.status_code, answer.json(), started))
                except httpx.HTTPError as err:
                    out.append((path, -1, repr(err), started))


def test_a_snapshot_republished_under_load_fails_no_request(live: dict[str, Any]) -> None:
    client, settings = live["client"], live["settings"]
    ref = client.get("/v1/queue", params={"limit": 1}).json()["items"][0]["account_ref"]
    original = serving.read(settings.serving_dir, serving.ACCOUNTS)
    assert original is not None
    shifted = original.set_column(  # every account's score moved by one point: which snapshot answered is visible
        original.column_names.index("score"), "score", pc.add(original.column("score"), pa.scalar(1.0))
    )
    before = client.get(f"/v1/accounts/{ref}").json()["score"]
    assert gc.get_freeze_count() > 0  # the service froze what it built at start, out of the collector's walks
    first_view = weakref.ref(live["app"].state.service.live.current())  # loaded before the service settled
    stop, out = threading.Event(), []  # type: ignore[var-annotated]
    paths = [f"/v1/accounts/{ref}", "/v1/queue?limit=3"]
    threads = [threading.Thread(target=_hammer, args=(live["url"], live["keys"]["fraud_analyst"], paths, stop, out))]
    threads += [threading.Thread(target=_hammer, args=(live["url"], live["keys"]["fraud_analyst"], paths, stop, out))]
    for t in threads:
        t.start()
    seen_switch: list[bool] = []
    try:
        for i in range(6):  # each switch is waited for (a loaded machine may be slow to answer): both are served
            version, score = (shifted, before + 1.0) if i % 2 == 0 else (original, before)
            serving.publish(settings.serving_dir, serving.ACCOUNTS, version)
            seen_switch.append(_served_within(client, f"/v1/accounts/{ref}", score, seconds=60))
    finally:
        serving.publish(settings.serving_dir, serving.ACCOUNTS, original)
        stop.set()
        for t in threads:
            t.join(60)
    assert seen_switch == [True] * 6
    assert out and [o for o in out if o[1] != 200] == []
    scores = {o[2]["score"] for o in out if o[0].startswith("/v1/accounts/")}
    assert scores <= {before, before + 1.0}  # whole snapshots: the old or the new, never a mix or an error
    assert client.get(f"/v1/accounts/{ref}").json()["score"] == before
    gc.collect()
    assert first_view() is None  # a replaced view is freed, though the service froze it out of collections


def _served_within(client: httpx.Client, path: str, score: float, seconds: float) -> bool:
    """Whether ``path`` answers with ``score`` within ``seconds`` (the service noticed the new snapshot)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = client.get(path)
        assert answer.status_code == 200
        if answer.json()["score"] == score:
            return True
        time.sleep(0.05)
    return False


def test_an_erased_subject_is_gone_from_lookups_once_the_erasure_completes(live: dict[str, Any]) -> None:
    client, settings = live["client"], live["settings"]
    raw = served_transaction(settings)[0]["account_id"]
    found = client.post("/v1/lookup", json={"kind": "account", "value": raw})
    assert found.status_code == 200
    ref = found.json()["accounts"][0]["account_ref"]
    other = client.get("/v1/queue", params={"limit": 1}).json()["items"][0]["account_ref"]
    assert other != ref
    stop, out = threading.Event(), []  # type: ignore[var-annotated]
    paths = [f"/v1/accounts/{ref}", f"/v1/accounts/{other}", "/v1/queue?limit=5"]
    threads = [
        threading.Thread(target=_hammer, args=(live["url"], live["keys"]["fraud_analyst"], paths, stop, out))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    try:
        row = requests.submit(
            stores_for(settings),
            requests.RequestKind.ERASURE,
            Identifiers(account_id=raw),
            datetime.now(UTC),
            verification=verified(),
        )
        completed_at = time.monotonic()
        time.sleep(1)  # lookups go on after it
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert row.status == requests.Status.COMPLETED, row.reason
    assert [o for o in out if o[1] not in (200, 404)] == []  # no failed request while it ran
    subject = [o for o in out if o[0] == f"/v1/accounts/{ref}"]
    assert {o[1] for o in subject if o[3] > completed_at} == {404}  # gone from the first lookup after
    assert 200 in {o[1] for o in subject if o[3] < completed_at}  # answered while the erasure ran
    assert [o for o in out if o[0] != f"/v1/accounts/{ref}" and o[1] != 200] == []
    assert client.get(f"/v1/accounts/{ref}").status_code == 404
    assert client.post("/v1/lookup", json={"kind": "account", "value": raw}).status_code == 404
    assert client.get(f"/v1/accounts/{other}").status_code == 200
    queue = client.get("/v1/queue", params={"limit": 500}).json()["items"]
    assert ref not in [r["account_ref"] for r in queue]
    admin = {"X-API-Key": live["keys"]["admin"], "X-Purpose": "data_subject_rights"}
    status = client.get(f"/v1/admin/requests/{row.request_id}", headers=admin)
    assert status.status_code == 200 and status.json()["status"] == "completed"
    assert status.json()["verification"]["method"] == "in_person"  # how the requester was verified (6.4.2)
    assert raw not in status.text
