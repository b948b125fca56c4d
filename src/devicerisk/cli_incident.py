"""``devicerisk incident ...``: what a security incident exposed (5.3.3), for the notification and the regulator.

It runs no flow (no Prefect server): it reads the stores, writes the report and audits the investigation. It
prints counts and where the report is; subjects' pseudonyms go into the report's JSON file only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from devicerisk.cli_runtime import DataDir
from devicerisk.config import Settings

incident_app = typer.Typer(help="Security incidents (5.3.3): what was exposed, whose, how protected.")
console = Console()
errors = Console(stderr=True)


def _fail(message: str) -> None:
    """A refused command: one line on stderr, exit code 2."""
    errors.print(f"[red]error:[/red] {message}", soft_wrap=True, markup=True, highlight=False)
    raise typer.Exit(2)


@incident_app.command("report")
def report(
    store: Annotated[
        str | None, typer.Option(help="The exposed store: a lake table (events...), serving, models, quarantine...")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Start of the exposure window (ISO date or time, UTC unless given).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="End of the window, exclusive (default: now).")] = None,
    files: Annotated[
        list[Path] | None, typer.Option("--files", help="An exposed file under the data directory (repeat for each).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the report (default: DATA_DIR/incidents/<id>).")] = None,
    actor: Annotated[str, typer.Option(help="Who investigates (a short name, for the audit).")] = "privacy-officer",
    data_dir: DataDir = None,
) -> None:
    """Report what an exposure of a store in a window (or of named files) disclosed: categories and sensitivities,
    subjects (as pseudonyms), whether pseudonymised, minimised or encrypted, and what the keys protect."""
    from devicerisk.governance.incident import IncidentError, Window, parse_time
    from devicerisk.governance.incident_report import investigate, record
    from devicerisk.governance.retention import RetentionConfigError
    from devicerisk.governance.stores import stores_for
    from devicerisk.privacy.keys import MissingKeyError
    from devicerisk.store.audit import AuditError

    if (store is None) == (not files):
        _fail("name the exposed store (--store, with --from/--to) or the exposed files (--files), not both")
    if files and (start or end):
        _fail("--from and --to select rows of a store; with --files every row of each file is exposed")
    try:
        window = Window(None if start is None else parse_time(start), None if end is None else parse_time(end))
        stores = stores_for(Settings.at(data_dir))
        incident = investigate(
            stores, actor=actor, now=datetime.now(UTC), store=store, window=window, files=files or ()
        )
        md, js = record(stores, incident, out)
    except (IncidentError, AuditError, MissingKeyError, RetentionConfigError, ValueError) as err:
        _fail(str(err))
    parts = f"{len(incident.exposures):,} parts"
    rows = sum(e.rows for e in incident.exposures)
    accounts = len(set().union(*(e.accounts for e in incident.exposures)))
    devices = len(set().union(*(e.devices for e in incident.exposures)))
    console.print(f"incident {incident.incident_id}: {parts}, {rows:,} rows exposed", highlight=False)
    console.print(f"  subjects: {accounts + devices:,} ({accounts:,} accounts, {devices:,} devices without account)")
    console.print(f"  report: {md}", soft_wrap=True, highlight=False)
    console.print(f"  json, with the subjects' pseudonyms to notify: {js}", soft_wrap=True, highlight=False)
