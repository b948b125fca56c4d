"""``devicerisk entrust ...``: extracts for outside processors (4.4), their register, and their end.

It runs no flow (no Prefect server): it reads the lake, writes the extract and the register, and audits each
command. It prints counts, the register and where an extract is; never a pseudonym, never a key.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from devicerisk.cli_runtime import DataDir
from devicerisk.config import Settings

if TYPE_CHECKING:
    from devicerisk.governance.stores import Stores

entrust_app = typer.Typer(
    help="Entrusted processing (4.4): minimised, re-keyed extracts for processors.", no_args_is_help=True
)
console = Console()
errors = Console(stderr=True)

Processor = Annotated[str, typer.Option("--processor", help="The processor's name (a short name).")]
Actor = Annotated[str, typer.Option(help="Who acts (a short name, for the audit).")]


def _fail(message: str) -> NoReturn:
    """A refused command: one line on stderr, exit code 2."""
    errors.print(f"[red]error:[/red] {message}", soft_wrap=True, markup=True, highlight=False)
    raise typer.Exit(2)


def _stores(data_dir: DataDir) -> Stores:
    from devicerisk.governance.stores import stores_for

    return stores_for(Settings.at(data_dir))


def _refusals() -> tuple[type[Exception], ...]:
    """The errors a command reports as its one-line refusal."""
    from devicerisk.governance.entrust import EntrustError
    from devicerisk.governance.incident import IncidentError
    from devicerisk.governance.retention import RetentionConfigError
    from devicerisk.privacy.keys import MissingKeyError
    from devicerisk.store.audit import AuditError
    from devicerisk.store.processors import RegisterError

    return EntrustError, IncidentError, RegisterError, AuditError, MissingKeyError, RetentionConfigError


@entrust_app.command("export")
def export(
    processor: Processor,
    purpose: Annotated[str, typer.Option(help="The purpose entrusted (one the contract's event types serve).")],
    until: Annotated[str, typer.Option(help="The last day the processor may hold the extract (ISO date, UTC).")],
    start: Annotated[str | None, typer.Option("--from", help="Events from this date or time (default: all).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Events before this date or time (default: now).")] = None,
    actor: Actor = "privacy-officer",
    data_dir: DataDir = None,
) -> None:
    """Write a minimised extract for a processor: only the purpose's fields, pseudonyms re-keyed for it alone."""
    from devicerisk.governance import entrust

    try:
        last_day = date.fromisoformat(until)
    except ValueError:
        _fail(f"--until is not an ISO date: {until!r}")
    try:
        stores = _stores(data_dir)
        entry = entrust.export(
            stores,
            processor=processor,
            purpose=purpose,
            until=last_day,
            window=entrust.window(start, end),
            actor=actor,
            now=datetime.now(UTC),
        )
    except _refusals() as err:
        _fail(str(err))
    folder = stores.data_dir / entry.location
    console.print(
        f"extract {entry.extract_id} for {entry.processor} ({entry.purpose}): {entry.rows:,} events, "
        f"{len(entry.columns)} columns, {len(entry.rekeyed)} re-keyed",
        highlight=False,
    )
    console.print(f"  key domain {entry.key_domain}; the processor holds it until {entry.until.isoformat()}")
    console.print(f"  folder (hand it over, then it is revoked at expiry): {folder}", soft_wrap=True, highlight=False)


@entrust_app.command("end")
def end(
    processor: Processor,
    confirmed_by: Annotated[
        str | None, typer.Option(help="Who at the processor confirmed their deletion (a short name).")
    ] = None,
    actor: Actor = "privacy-officer",
    data_dir: DataDir = None,
) -> None:
    """Revoke a processor's extract: delete the local files, end the entry, record the processor's deletion."""
    from devicerisk.governance import entrust

    try:
        entry = entrust.end(
            _stores(data_dir), processor=processor, actor=actor, confirmed_by=confirmed_by, now=datetime.now(UTC)
        )
    except _refusals() as err:
        _fail(str(err))
    deletion = entry.deletion
    assert deletion is not None
    console.print(
        f"{entry.processor}: extract {entry.extract_id} ended {deletion.at:%Y-%m-%d} ({deletion.reason}); "
        f"{deletion.files_removed} local files removed",
        highlight=False,
    )
    if deletion.confirmed_by is None:
        console.print("  the processor's deletion is not confirmed yet: `entrust end --confirmed-by WHO` records it")
    else:
        console.print(f"  deletion confirmed by {deletion.confirmed_by}", highlight=False)


@entrust_app.command("list")
def list_entrustments(actor: Actor = "privacy-officer", data_dir: DataDir = None) -> None:
    """The register of processors: scope, purpose, expiry, status, the erasures since each export (6.2.2) and how
    each ended."""
    from devicerisk.governance import entrust

    try:
        entries = entrust.listing(_stores(data_dir), actor)
    except _refusals() as err:
        _fail(str(err))
    if not entries:
        console.print("the register is empty: nothing has been entrusted")
        return
    table = Table("processor", "extract", "purpose", "status", "created", "until", "events", "columns", "key domain")
    table.add_column("erasures since (forward them)")
    table.add_column("ended")
    for e in entries:
        d = e.deletion
        ended = "" if d is None else f"{d.at:%Y-%m-%d} {d.reason} by {d.by}; "
        ended += "" if d is None else (f"confirmed by {d.confirmed_by}" if d.confirmed_by else "not confirmed")
        table.add_row(
            e.processor,
            e.extract_id,
            e.purpose,
            e.status,
            f"{e.created_at:%Y-%m-%d}",
            e.until.isoformat(),
            f"{e.rows:,}",
            f"{len(e.columns)} ({len(e.rekeyed)} re-keyed)",
            e.key_domain,
            ", ".join(f"{x.request_id} ({x.rows:,} events, {x.at:%Y-%m-%d})" for x in e.erasures),
            ended,
        )
    console.print(table)
