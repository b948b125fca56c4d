"""Incident reports (5.3.3): one folder per investigation, ``incidents/<id>/`` under the data directory.

Each folder holds ``report.md`` (for people: counts and categories, no pseudonym in full) and ``incident.json``
(for the notification run: the exposed subjects' pseudonyms). Neither holds a raw identifier or key material.
Files are written atomically and owner-only; an investigation that is run again gets a new id and folder.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from devicerisk.store.files import write_atomic

INCIDENTS = "incidents"
MARKDOWN = "report.md"
JSON = "incident.json"


def incidents_dir(data_dir: Path) -> Path:
    """Where the incident reports of a data directory live."""
    return data_dir / INCIDENTS


def new_id(now: datetime) -> str:
    """A fresh incident id: its UTC time, then random hex (two runs in one second do not collide)."""
    return f"inc-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def write(folder: Path, markdown: str, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write the Markdown report and the JSON file into ``folder``; returns their paths (Markdown first)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    md, js = folder / MARKDOWN, folder / JSON
    write_atomic(js, json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False).encode())
    write_atomic(md, markdown.encode())
    return md, js
