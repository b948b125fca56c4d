"""`devicerisk share`: no cell under k leaves, by itself or by differencing two exports that overlap."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from devicerisk.analytics import open_lake
from devicerisk.analytics.share import CELL, DEFAULT_K, export, week_of
from devicerisk.cli import app
from devicerisk.config import Settings
from devicerisk.store import audit

#: Opening the lake is audited (2.8): the session has the demo lake's keys, as an analyst's has.
pytestmark = pytest.mark.usefixtures("demo_keys_in_env")


def _cells(table: pa.Table) -> dict[tuple[object, ...], dict[str, object]]:
    rows = table.to_pylist()
    keyed = {tuple(r[c] for c in CELL): r for r in rows}
    assert len(keyed) == len(rows)  # one row per cell: no total, subtotal or margin beside the cells
    return keyed


def test_no_cell_under_k_leaves_and_the_report_counts_the_suppressed(demo_lake: Settings) -> None:
    with open_lake(demo_lake.data_dir, purpose="risk_control") as lake:
        shared = export(lake)  # k = 10 by default
        everything = export(lake, k=2)  # the same cells, suppressing only single-account ones
        truth = lake.sql("""
            SELECT date_trunc('week', event_date)::DATE AS week, coalesce(device_model, 'unknown') AS device_model,
                   coalesce(device_imsi_country, 'unknown') AS region, count(DISTINCT account_id_pid) AS accounts
            FROM events WHERE event_type = 'transaction' AND account_id_pid IS NOT NULL GROUP BY ALL
        """).to_arrow_table()
    assert shared.k == DEFAULT_K == 10
    published = _cells(shared.cells)
    sizes = {tuple(r[c] for c in CELL): r["accounts"] for r in truth.to_pylist()}
    small = {key for key, n in sizes.items() if n < DEFAULT_K}
    assert small and published  # the lake has small cells to suppress, and cells to publish
    assert all(row["accounts"] >= DEFAULT_K for row in published.values())
    assert set(published) == set(sizes) - small  # every cell of k or more accounts leaves, exactly counted
    assert all(published[key]["accounts"] == sizes[key] for key in published)
    assert shared.suppressed == len(small)
    report = shared.report()
    assert f"cells suppressed (fewer than {DEFAULT_K} accounts): {len(small)}" in report
    # the suppressed cells' own counts appear nowhere, not even as a difference from a total
    assert "total" not in {c.lower() for c in shared.cells.column_names}
    assert len(_cells(everything.cells)) > len(published)


#: k for the differencing test: the 1,000-account lake's first calendar week holds one day, whose cells all
#: fall under the default k; a smaller k keeps cells in every week, so both exports hold a week of their own.
K_SMALL_LAKE = 5


def test_differencing_two_overlapping_exports_reveals_no_small_cell(demo_lake: Settings) -> None:
    with open_lake(demo_lake.data_dir, purpose="risk_control") as lake:
        first_day, last_day = lake.sql(
            "SELECT min(event_date), max(event_date) FROM events WHERE event_type = 'transaction'"
        ).fetchall()[0]
        weeks = sorted({week_of(first_day + timedelta(days=d)) for d in range((last_day - first_day).days + 1)})
        assert len(weeks) >= 3
        # two exports sharing their middle week, the second asked for from a Wednesday
        early = export(lake, weeks[0], weeks[1], k=K_SMALL_LAKE)
        late = export(lake, weeks[1] + timedelta(days=2), weeks[2], k=K_SMALL_LAKE)
        shared_week = export(lake, weeks[1], weeks[1], k=K_SMALL_LAKE)
    assert late.first_week == weeks[1]  # a period given mid-week is widened to the whole week
    a, b, middle = _cells(early.cells), _cells(late.cells), _cells(shared_week.cells)
    common = set(a) & set(b)
    assert common and {key[0] for key in common} == {weeks[1]}
    assert set(a) - set(b) and set(b) - set(a)
    # the overlap is published identically by both: subtracting one export from the other gives zero on it ...
    assert all(a[key] == b[key] == middle[key] for key in common)
    assert {k for k in a if k[0] == weeks[1]} == {k for k in b if k[0] == weeks[1]} == set(middle)
    # ... and leaves only whole published cells, each of at least k accounts
    assert all(row["accounts"] >= K_SMALL_LAKE for row in (*a.values(), *b.values()))
    # week by week, what one export holds and the other does not is a set of whole weeks, never part of one
    for week in weeks[:3]:
        in_a, in_b = {k for k in a if k[0] == week}, {k for k in b if k[0] == week}
        assert not in_a or not in_b or in_a == in_b


def test_the_share_command_writes_cells_and_report_and_audits(demo_lake: Settings, tmp_path: Path) -> None:
    out = tmp_path / "partner"
    env = {
        "DEVICERISK_AUDIT_KEY_FILE": str(demo_lake.audit_key_file),
        "DEVICERISK_SECRETS_DIR": str(demo_lake.secrets_dir),
        "DEVICERISK_MODE": "production",
    }
    result = CliRunner().invoke(
        app, ["share", "--data-dir", str(demo_lake.data_dir), "--out", str(out), "--k", "12"], env=env
    )
    assert result.exit_code == 0, result.output
    with (out / "cells.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and all(int(r["accounts"]) >= 12 for r in rows)
    assert "k = 12" in (out / "report.md").read_text()
    last = audit.records(demo_lake.audit_dir)[-1]
    assert last["action"] == "share_export" and last["counts"]["cells"] == len(rows)
    with pytest.raises(ValueError, match="at least 2"):
        export(open_lake(demo_lake.data_dir, purpose="risk_control"), k=1)
    assert date.fromisoformat(rows[0]["week"]).weekday() == 0  # weeks start on Monday
