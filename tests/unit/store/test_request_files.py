"""Request files: an export writes every table, whatever its column types."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa

from devicerisk.store import request_files


def test_clause_6_2_1_lists_structs_and_maps_export_as_json_text_in_csv(tmp_path: Path) -> None:
    table = pa.table(
        {
            "reasons": pa.array([["new device", "night"], None], pa.list_(pa.string())),
            "model": pa.array([{"kind": "gbm", "version": 3}, {"kind": "lr", "version": 1}]),
            "tags": pa.array([[("a", 1)], []], pa.map_(pa.string(), pa.int64())),
            "name": pa.array(["x", "y"], pa.string_view()),  # as files rewritten by Delta hold them
            "score": [0.5, 0.25],
        }
    )

    request_files.write_export(tmp_path, "req-1", {"lake.scores": table}, "# summary\n")

    with (tmp_path / "req-1" / "lake.scores.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert json.loads(rows[0]["reasons"]) == ["new device", "night"] and rows[1]["reasons"] == ""
    assert json.loads(rows[0]["model"]) == {"kind": "gbm", "version": 3}
    assert json.loads(rows[0]["tags"]) == [["a", 1]] and rows[1]["name"] == "y" and rows[1]["score"] == "0.25"
    exported = json.loads((tmp_path / "req-1" / "export.json").read_text())["lake.scores"]
    assert exported[0]["reasons"] == ["new device", "night"]  # JSON keeps the structure
    assert request_files.export_counts(tmp_path, "req-1") == {"lake.scores": 2}
