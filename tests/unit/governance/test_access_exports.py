"""Access requests (6.2.1): every table exports, and a receipt always says what its export holds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import retention_world as world
from devicerisk.config import Settings
from devicerisk.governance import requests
from devicerisk.governance.requests import RequestKind, Status
from devicerisk.governance.stores import Stores, stores_for
from devicerisk.store import request_files
from factories import verified


class _Crash(RuntimeError):
    pass


@pytest.fixture
def stores(settings: Settings) -> Stores:
    s = settings.model_copy(update={"vacuum_grace_hours": 0})
    world.build(s)
    return stores_for(s)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_clause_6_2_1_an_access_resumed_after_an_erasure_exports_and_counts_what_is_left(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export broke half-way; the subject was erased before it was resumed: the receipt counts the export."""
    write = request_files.write_atomic

    def broken(path: Path, data: bytes) -> None:
        if path.name.startswith("lake.scores"):
            raise _Crash("the export stopped here")
        write(path, data)

    monkeypatch.setattr(request_files, "write_atomic", broken)
    with pytest.raises(_Crash):
        requests.submit(stores, RequestKind.ACCESS, world.SUBJECT, world.NOW, verification=verified())
    monkeypatch.undo()
    (access,) = requests.pending(stores)
    out = stores.requests_dir / access.request_id
    assert "lake.events.csv" in _files(out)  # written before the export broke
    erased = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())
    assert erased.status == Status.COMPLETED

    done = requests.process(stores, access, world.NOW, actor="requests-flow", role="pipeline")

    assert done.status == Status.COMPLETED
    assert json.loads((out / "export.json").read_text()) == {}
    assert _files(out) == {"export.json", "summary.md", "receipt.json"}  # nothing left of the broken attempt
    receipt = json.loads((out / "receipt.json").read_text())
    assert receipt["records_per_store"] == {} and receipt["records_per_table"] == {}
    assert receipt["records_found_when_received"] == access.found
    assert receipt["gone_since_received"] == {k: v for k, v in access.found.items() if k != "signals"}


def test_clause_6_2_1_an_export_removed_before_the_receipt_is_made_again(stores: Stores) -> None:
    def crash(at: str) -> None:
        if at == "export":
            raise _Crash(at)

    with pytest.raises(_Crash):
        requests.submit(stores, RequestKind.ACCESS, world.SUBJECT, world.NOW, checkpoint=crash, verification=verified())
    (row,) = requests.pending(stores)
    assert row.done == ["export"]
    out = stores.requests_dir / row.request_id
    shutil.rmtree(out)  # e.g. an operator cleaned the folder: the receipt must not count a missing export

    done = requests.process(stores, row, world.NOW, actor="requests-flow", role="pipeline")

    assert done.status == Status.COMPLETED
    receipt = json.loads((out / "receipt.json").read_text())
    assert receipt["records_per_table"] == request_files.export_counts(stores.requests_dir, row.request_id)
    assert receipt["records_per_store"]["lake.events"] == 11
