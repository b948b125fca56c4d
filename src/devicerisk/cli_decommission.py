"""``devicerisk decommission``: termination of operation (5.1.3). Deletes every store, or anonymises it into
k-anonymous aggregates first, then destroys the keys and writes a receipt.

It runs no flow (no Prefect server). ``--dry-run`` lists what would go and changes nothing. Otherwise the operator
confirms by typing a phrase that names the mode and the data directory (or passes it with ``--yes --confirm``);
anything else aborts before anything changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from devicerisk.cli_runtime import DataDir
from devicerisk.config import Settings

if TYPE_CHECKING:
    from devicerisk.governance.decommission import Plan

console = Console()
errors = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    """A refused or aborted command: one line on stderr."""
    errors.print(f"[red]error:[/red] {message}", soft_wrap=True, markup=True, highlight=False)
    raise typer.Exit(code)


def print_plan(chosen: Plan) -> None:
    """The stores a decommissioning removes, what it keeps and the keys it destroys."""
    table = Table(title=f"decommission --mode {chosen.mode}: stores removed from {chosen.data_dir}")
    for column, justify in (("store", "left"), ("files", "right"), ("bytes", "right"), ("rows", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for s in chosen.stores:
        table.add_row(s.name, f"{s.files:,}", f"{s.bytes:,}", "" if s.rows is None else f"{s.rows:,}")
    table.add_row("total", f"{chosen.files:,}", f"{chosen.bytes:,}", "", end_section=True)
    console.print(table)
    kept = ", ".join(p.name for p in chosen.kept) or "nothing"
    console.print(f"kept: {kept} (the audit trail is kept as the record of the termination)", highlight=False)
    if chosen.mode == "anonymise":
        console.print(f"aggregates written first to anonymised/: events_by_day, transactions_by_day (k = {chosen.k})")
    console.print(f"API keys revoked with their store: {len(chosen.api_key_ids)}")
    for key in chosen.keys:
        where = f"file {key.path}" if key.path is not None else f"environment {key.variable}"
        action = "destroy" if key.path is not None else "cannot destroy: do it in your secret store"
        console.print(f"{key.purpose} key ({key.use}) id {key.key_id or '-'}, {where}: {action}", highlight=False)


def decommission_command(
    mode: Annotated[str, typer.Option(help="delete: remove every store; anonymise: keep k-anonymous aggregates first")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be removed; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask (scripts): needs --confirm with the phrase.")] = False,
    confirm: Annotated[
        str | None, typer.Option(help="With --yes: the phrase the prompt asks for ('MODE DATA_DIR', in full).")
    ] = None,
    receipt: Annotated[
        Path | None, typer.Option(help="Folder for the receipt (default: the data directory's root).")
    ] = None,
    k: Annotated[
        int | None, typer.Option(min=2, help="Least subjects per aggregate cell (DEVICERISK_ANONYMITY_K).")
    ] = None,
    actor: Annotated[str, typer.Option(help="Who decommissions (a short name, for the audit).")] = "privacy-officer",
    data_dir: DataDir = None,
) -> None:
    """Termination of operation (5.1.3): delete every store, or anonymise it into aggregates that identify no one;
    then destroy the keys (crypto-shredding) and write a receipt. Asks for an explicit confirmation."""
    from devicerisk.governance import decommission as dc
    from devicerisk.privacy.keys import MissingKeyError
    from devicerisk.store.audit import AuditError

    if mode not in ("delete", "anonymise"):
        _fail("--mode is 'delete' or 'anonymise'")
    settings = Settings.at(data_dir)
    try:
        chosen = dc.plan(settings, dc.Mode(mode), k)
    except dc.DecommissionError as err:
        _fail(str(err))
    print_plan(chosen)
    if dry_run:
        console.print("dry run: nothing was changed")
        return
    wanted = dc.phrase(settings, dc.Mode(mode))
    if yes:
        given = confirm
    else:
        console.print("This removes every store listed above and destroys the keys. It cannot be undone.")
        try:
            given = typer.prompt(f"Type '{wanted}' to go on", default="", show_default=False)
        except typer.Abort:  # end of input, or Ctrl-C
            given = None
    if (given or "").strip() != wanted:
        _fail(f"aborted: the confirmation is not '{wanted}'; nothing was changed", code=1)
    try:
        outcome = dc.run(settings, chosen, actor=actor, now=datetime.now(UTC), receipt_dir=receipt)
    except (AuditError, MissingKeyError) as err:
        _fail(f"{err}; nothing was changed")
    removed = outcome.receipt["removed"]
    console.print(f"removed {len(removed['stores'])} stores: {removed['files']:,} files, {removed['bytes']:,} bytes")
    for table in (outcome.receipt["aggregates"] or {}).get("tables", []):
        console.print(f"kept {table['file']}: {table['cells']:,} cells, {table['cells_suppressed']:,} suppressed")
    for key in outcome.receipt["keys"]:
        extra = f": {key['action']}" if key.get("action") else ""
        console.print(f"{key['purpose']} key {key['key_id'] or '-'}: {key['status']}{extra}", highlight=False)
    console.print(f"receipt: {outcome.json_path} and {outcome.markdown_path.name}", soft_wrap=True, highlight=False)
