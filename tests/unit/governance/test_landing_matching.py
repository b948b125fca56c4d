"""A subject's raw landing records are found in one vectorised pass, and never someone else's.

A telemetry file is matched by DuckDB's typed read, whose rows are taken as the file's lines in order. A line
ingest sets aside (an oversized record) or a line DuckDB skips would shift that order: the export must then still
hold exactly the subject's records.
"""

from __future__ import annotations

import orjson
import pytest

import retention_world as world
from devicerisk.config import Settings
from devicerisk.contract.fields import MAX_RECORD_BYTES
from devicerisk.governance import subject_data
from devicerisk.governance.stores import Stores, stores_for
from devicerisk.governance.subjects import records_matching, resolve
from factories import line, write_batch


@pytest.fixture
def setup(settings: Settings) -> tuple[world.World, Stores]:
    return world.build(settings), stores_for(settings)


def _landing_markers(stores: Stores) -> list[str | None]:
    subject = resolve(world.SUBJECT, stores.keyring, stores.lake_dir)
    exported = subject_data.collect(stores, subject)["landing"]
    return [orjson.loads(r)["payload"].get("marker") for r in exported.column("record").to_pylist()]


@pytest.mark.parametrize("shift", ["oversized", "blank"])
def test_clause_6_2_1_landing_records_of_a_file_whose_lines_and_rows_differ(
    setup: tuple[world.World, Stores], shift: str
) -> None:
    _, stores = setup
    mine = world._events(world.SUBJECT.account_id, 0, "operation", "operation", "operation", imei="356938035643809")
    theirs = world._events(world.STRANGER, 0, "operation", "operation", imei="356938035643809")
    for n, record in enumerate([*mine, *theirs]):
        record["payload"] = {**record["payload"], "marker": f"{'mine' if n < len(mine) else 'theirs'}-{n}"}
    big = dict(theirs[0], payload={**theirs[0]["payload"], "marker": "x" * MAX_RECORD_BYTES})
    first = line(big) if shift == "oversized" else b"   "
    write_batch(stores.landing_dir / "telemetry" / "zz-shifted.ndjson", [first, theirs[0], *mine, theirs[1]])

    found = [m for m in _landing_markers(stores) if m and m.startswith(("mine", "theirs"))]

    assert sorted(found) == ["mine-0", "mine-1", "mine-2"]


def test_records_matching_judges_each_record_as_its_rows_are_judged(setup: tuple[world.World, Stores]) -> None:
    """Labels by subject type, identifiers of unlogged use, and records no lookup can read, in one call."""
    _, stores = setup
    subject = resolve(world.SUBJECT, stores.keyring, stores.lake_dir)
    unlogged = world._events(None, 0, "operation")[0]  # the subject's device, no account: theirs (2.1)
    neighbours = world._events(world.NEIGHBOUR, 0, "operation")[0]  # the same device, another account: not theirs
    raws = [
        line({"subject_type": "account", "subject_id": world.SUBJECT.account_id, "label": "fraud"}),
        line({"subject_type": "transaction", "subject_id": world.SUBJECT.account_id, "label": "fraud"}),
        line({"subject_type": "account", "subject_id": world.STRANGER, "label": "fraud"}),
        line(unlogged),
        line(neighbours),
        b"not json",
        line({"account_id": 17}),
    ]
    assert records_matching(raws, subject, stores.keyring) == [True, False, False, True, False, False, False]
