"""The notebooks in notebooks/ run on a demo lake, reach data only through the analyst interface, and are
committed without outputs."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from devicerisk.config import Settings

#: Opening the lake is audited (2.8): the session has the demo lake's keys, as an analyst's has.
pytestmark = pytest.mark.usefixtures("demo_keys_in_env")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
#: What a notebook may import from the project: the interface and its helpers, nothing that touches a store.
ALLOWED = re.compile(r"^from devicerisk\.analytics(\.\w+)? import ")


def test_the_three_notebooks_are_there() -> None:
    assert {p.stem for p in NOTEBOOKS} == {
        "risk_scores_and_reasons",
        "device_graph_and_farms",
        "model_performance_over_time",
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_is_committed_clean_and_reads_through_the_interface(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "clear the outputs before committing"
    lines = [line.strip() for c in code for line in c.source.splitlines()]
    project = [line for line in lines if "devicerisk" in line and line.startswith(("import", "from"))]
    assert project and all(ALLOWED.match(line) for line in project), project
    assert not any(word in line for line in lines for word in ("deltalake", "duckdb.connect", "read_parquet"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_runs_on_the_demo_lake(
    path: Path, demo_lake: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DEVICERISK_DATA_DIR", str(demo_lake.data_dir))  # the kernel inherits it
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "each notebook draws its plots with matplotlib"
