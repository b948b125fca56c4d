"""De-identified sharing (policy 4.1.3, 4.1.4): fraud rates by device model, region and week, k-anonymous.

Each row of an export is one cell: a calendar week (Monday to Sunday, UTC), a device model and a region (the
SIM's country, ``unknown`` without one). It counts the cell's distinct accounts (its subjects), their
transactions and the transactions a fraud label marks (the contract's label semantics,
:func:`devicerisk.risk.labels.fraud_marks`). A cell of fewer than ``k`` accounts is suppressed: it does
not leave, and the report counts suppressed cells, never their sizes.

Why differencing two exports reveals no small cell:

- the cells are fixed and do not overlap: whole calendar weeks (a period given mid-week is widened to the
  whole weeks it touches), and one fixed set of dimensions. A cell is the same function of the data in every
  export that includes its week, so two overlapping exports publish identical rows for their common weeks,
  and subtracting one from the other leaves whole published cells, each of at least ``k`` accounts;
- no totals, subtotals or margins are published (nor the suppressed cells' counts in the report), so no
  published sum minus published cells can give a suppressed cell: complementary suppression is not needed.

Data that changes between two exports (late labels, late events, erasures) changes the cells it falls in;
the partner sees the new values, not which subject moved. Exports are of the lake as it is at the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from devicerisk import engine
from devicerisk.analytics.interface import AnalystLake
from devicerisk.privacy.kanon import DEFAULT_K, check_k, small_cells
from devicerisk.risk.labels import fraud_marks

#: The fixed dimensions of a cell.
CELL = ("week", "device_model", "region")

_TRANSACTIONS = """
SELECT date_trunc('week', event_date)::DATE AS week,
       coalesce(device_model, 'unknown') AS device_model,
       coalesce(device_imsi_country, 'unknown') AS region,
       transaction_id_pid AS subject, account_id_pid AS acct, epoch_us(event_time) AS t
FROM events
WHERE event_type = 'transaction' AND account_id_pid IS NOT NULL
  AND event_date >= $start AND event_date < $end
"""

_CELLS = """
SELECT week, device_model, region, count(DISTINCT acct) AS accounts, count(*) AS transactions,
       sum(fraud)::BIGINT AS fraud_transactions, round(sum(fraud) / count(*), 4) AS fraud_rate
FROM marked GROUP BY ALL ORDER BY ALL
"""


def week_of(day: date) -> date:
    """The Monday that starts ``day``'s calendar week."""
    return day - timedelta(days=day.weekday())


@dataclass
class ShareExport:
    """One export: the published cells and what was suppressed."""

    k: int
    first_week: date
    last_week: date
    cells: pa.Table
    suppressed_per_week: dict[date, int] = field(default_factory=dict)

    @property
    def suppressed(self) -> int:
        return sum(self.suppressed_per_week.values())

    def report(self) -> str:
        """A short Markdown report of the export and what it suppressed (counts of cells, never their sizes)."""
        weeks = "\n".join(f"| {w.isoformat()} | {n} |" for w, n in sorted(self.suppressed_per_week.items()))
        return "\n".join(
            [
                "# De-identified export: fraud rates by device model, region and week",
                "",
                f"Weeks {self.first_week.isoformat()} to {self.last_week.isoformat()} (Monday to Sunday, UTC); "
                f"k = {self.k}.",
                "",
                f"- cells published: {self.cells.num_rows}, each describing at least {self.k} distinct accounts;",
                f"- cells suppressed (fewer than {self.k} accounts): {self.suppressed}. Their counts are not given,",
                "  and no total or subtotal is published, so they cannot be derived from what is.",
                "",
                "| week | cells suppressed |",
                "|---|---:|",
                weeks,
                "",
            ]
        )

    def write(self, folder: Path) -> tuple[Path, Path]:
        """Write ``cells.csv`` and ``report.md`` into ``folder``; returns their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        csv, md = folder / "cells.csv", folder / "report.md"
        pacsv.write_csv(self.cells, csv)
        md.write_text(self.report())
        return csv, md


def export(lake: AnalystLake, since: date | None = None, until: date | None = None, k: int = DEFAULT_K) -> ShareExport:
    """The k-anonymous cells of the weeks from ``since``'s to ``until``'s (both widened to whole weeks; by
    default the snapshot's first and last). Transactions without an account describe no subject and are left
    out."""
    check_k(k)
    bounds = lake.events().filter("event_type = 'transaction'").aggregate("min(event_date), max(event_date)")
    first, last = bounds.fetchall()[0]
    if first is None:
        raise LookupError("the lake holds no transaction yet")
    start = week_of(since or first)
    end = week_of(until or last) + timedelta(days=7)
    rows = lake.sql(_TRANSACTIONS, {"start": start, "end": end}).to_arrow_table()
    fraud = fraud_marks(rows, lake.labels().to_arrow_table(), None)
    with engine.registered(marked=rows.append_column("fraud", pa.array(fraud, pa.int64()))) as con:
        cells = con.sql(_CELLS).to_arrow_table()
    small = small_cells(cells, "accounts", k)
    suppressed = cells.filter(small).group_by("week").aggregate([("week", "count")])
    per_week = dict(
        zip(suppressed.column("week").to_pylist(), suppressed.column("week_count").to_pylist(), strict=True)
    )
    return ShareExport(k, start, end - timedelta(days=7), cells.filter(pc.invert(small)), per_week)
