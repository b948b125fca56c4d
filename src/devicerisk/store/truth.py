"""The generator's ground truth in the landing zone (synthetic data only): which subjects are fraud.

It holds raw ids, like the rest of the landing zone; readers pseudonymise them in memory at once.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

TRUTH_FILE = Path("truth") / "scenarios.ndjson"


def read_truth(landing_dir: Path) -> pa.Table | None:
    """(subject_type, subject_id, fraud, scenario) of every truth row, or None without a truth file."""
    path = landing_dir / TRUTH_FILE
    if not path.exists():
        return None
    con = duckdb.connect(":memory:")
    try:
        query = """
            SELECT subject_type, subject_id, fraud, scenario FROM read_json($path, format = 'newline_delimited',
                columns = {subject_type: 'VARCHAR', subject_id: 'VARCHAR', fraud: 'BOOLEAN', scenario: 'VARCHAR'})
        """
        return con.sql(query, params={"path": str(path)}).to_arrow_table()
    finally:
        con.close()
