"""What the distribution installs: every package under ``src/devicerisk``, and the flows as ``devicerisk.flows``.

The flows' files stay in the top-level ``flows/`` folder, where ``prefect.yaml`` names them; they install
under the project's own name, never as a generic top-level ``flows`` package.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_under_src_is_installed_and_flows_under_the_projects_name() -> None:
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {f"devicerisk.{d.name}" for d in (ROOT / "src" / "devicerisk").iterdir() if (d / "__init__.py").exists()}
    assert set(setup["packages"]) == {"devicerisk", "devicerisk.flows"} | on_disk
    assert setup["package-dir"]["devicerisk.flows"] == "flows" and (ROOT / "flows" / "__init__.py").exists()


def test_no_top_level_flows_package_is_importable_outside_the_checkout(tmp_path: Path) -> None:
    probe = (
        "import importlib.util, devicerisk.flows.pipeline as p; "
        "print(importlib.util.find_spec('flows') is None, p.pipeline_flow.name)"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "pipeline"]
