"""The ``devicerisk`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from devicerisk.cli_api import keys_app, serve_command
from devicerisk.cli_decommission import decommission_command
from devicerisk.cli_entrust import entrust_app
from devicerisk.cli_incident import incident_app
from devicerisk.cli_lookup import lookup_app
from devicerisk.cli_ops import down_command, up_command
from devicerisk.cli_retention import print_last_purge, request_app, retention_app
from devicerisk.cli_risk import risk_app
from devicerisk.cli_runtime import App, DataDir, configure, prepare_prefect
from devicerisk.config import Settings

if TYPE_CHECKING:  # the CLI imports what a command needs when it runs: a quick start
    from devicerisk.ingest.report import IngestSummary

app = App(
    help="Privacy-first device-telemetry risk control.", no_args_is_help=True, pretty_exceptions_show_locals=False
)
contract_app = typer.Typer(help="The data contract.", no_args_is_help=True)
app.add_typer(contract_app, name="contract")
audit_app = typer.Typer(help="The authenticated, hash-chained audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(retention_app, name="retention")
app.add_typer(request_app, name="request")
app.add_typer(incident_app, name="incident")
app.add_typer(entrust_app, name="entrust")
app.add_typer(risk_app, name="risk")
# Termination of operation (5.1.3; docs/OPERATIONS.md, "Termination of operation").
app.command("decommission")(decommission_command)
# Operations: a local Prefect server, the deployments and a worker (docs/OPERATIONS.md, "Bringing it up").
app.command("up")(up_command)
app.command("down")(down_command)
# The fraud team's lookup service (docs/OPERATIONS.md, "The lookup service").
app.command("serve")(serve_command)
app.add_typer(keys_app, name="keys")
app.add_typer(lookup_app, name="lookup")
console = Console()


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="Landing directory to write into.")] = Path("data/landing"),
    accounts: Annotated[int, typer.Option(min=1, help="Number of accounts.")] = 2000,
    days: Annotated[int, typer.Option(min=1, help="Days of telemetry.")] = 7,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 7,
    batch_size: Annotated[int, typer.Option(min=1, help="Events per batch file.")] = 50_000,
    plain: Annotated[bool, typer.Option(help="Write plain NDJSON instead of gzip.")] = False,
) -> None:
    """Generate synthetic telemetry with planted fraud scenarios and look-alikes."""
    from devicerisk.synth import SynthConfig, generate

    config = SynthConfig(accounts=accounts, days=days, seed=seed, events_per_batch=batch_size, gzip=not plain)
    with Progress(
        TextColumn("synth"), BarColumn(), TextColumn("{task.completed:,} events"), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("synth", total=None)
        result = generate(out, config, progress=lambda n: progress.update(task, completed=n))
    console.print(f"wrote {result.events:,} events in {len(result.batches)} batches to {out}")


@app.command()
def ingest(data_dir: DataDir = None) -> None:
    """Ingest new landing batches into the lake (a Prefect flow run)."""
    prepare_prefect()
    from devicerisk.flows.ingest import ingest_flow

    summary = ingest_flow(str(Settings.at(data_dir).data_dir))
    _print_summary(summary)


@app.command()
def demo(
    data_dir: DataDir = None,
    accounts: Annotated[int, typer.Option(min=1)] = 5000,
    days: Annotated[
        int,
        typer.Option(
            min=1,
            help="Days of telemetry: two weeks of 5,000 accounts carry enough labels for both scores to be supervised.",
        ),
    ] = 14,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """Generate two weeks of synthetic telemetry (if none has landed) and run the pipeline on it."""
    prepare_prefect()
    settings = Settings.at(data_dir)
    from devicerisk.store import landing

    if not landing.pending_files(settings.landing_dir):
        synth(out=settings.landing_dir, accounts=accounts, days=days, seed=seed)
        land_broken_demo_batch(settings.landing_dir / landing.TELEMETRY)
    from devicerisk.flows.pipeline import pipeline_flow

    with console.status("running the pipeline flow (ingest, labels, train, score, retention purge)..."):
        summary = pipeline_flow(str(settings.data_dir), accounts=True, purge=True)
    _print_summary(summary)
    print_last_purge(settings.audit_dir)
    from devicerisk.cli_risk import print_top_accounts

    print_top_accounts(settings)
    console.print(
        f"lake: {settings.lake_dir}  warehouse: {settings.warehouse_path}  quarantine: {settings.quarantine_dir}"
    )


def land_broken_demo_batch(folder: Path) -> Path:
    """A small batch from a misbehaving upstream, so the demo shows quarantine at work."""
    good = {
        "schema_version": 1,
        "event_id": "demo-broken-1",
        "event_type": "operation",
        "event_time": "2026-11-03T10:00:00+08:00",
        "account_id": "demo-account",
        "app": {"platform": "android", "version": "5.2.1"},
        "device": {"imei": "356938035643809", "mac": "3C:5A:B4:00:11:22"},
        "payload": {"action": "view"},
    }
    records = [
        json.dumps({**good, "event_id": "demo-broken-2", "payload": {"action": "view", "duration_ms": "12"}}),
        json.dumps({**good, "event_id": "demo-broken-3", "event_type": "telemetry_ping"}),
        json.dumps({**good, "event_id": "demo-broken-4", "event_time": "2026-11-03 10:00"}),
        json.dumps(good)[:90],
    ]
    path = folder / "zz-demo-broken-upstream.ndjson"
    path.write_text("\n".join(records) + "\n")
    return path


def _print_summary(summary: IngestSummary) -> None:
    from devicerisk.ingest.report import summary_rows

    table = Table(title="ingest")
    table.add_column("")
    table.add_column("count", justify="right")
    for label, n in summary_rows(summary):
        table.add_row(label, f"{n:,}")
    console.print(table)
    if summary.reasons:
        reasons = Table(title="quarantine and drop reasons")
        reasons.add_column("reason")
        reasons.add_column("records", justify="right")
        for reason, n in summary.reasons.items():
            reasons.add_row(reason, f"{n:,}")
        console.print(reasons)
    for note in summary.notes:  # failed and refused files, files in landing that are no batches
        console.print(f"- {note}", markup=False, highlight=False)


@app.command()
def ledger(
    data_dir: DataDir = None, last: Annotated[int, typer.Option(min=1, help="Show the newest N batches.")] = 20
) -> None:
    """Per-batch accounting: read = accepted + quarantined + dropped by consent + duplicates."""
    from devicerisk.store import warehouse

    settings = Settings.at(data_dir)
    rows = warehouse.ledger(settings.warehouse_path, from_copy=True).to_pylist()[-last:]
    table = Table(title=f"batch ledger ({settings.warehouse_path})")
    for column in ("committed at", "file", "read", "accepted", "quarantined", "consent-dropped", "duplicates"):
        table.add_column(column, justify="left" if column in ("committed at", "file") else "right")
    for r in rows:
        counts = ("records_read", "accepted", "quarantined", "consent_dropped", "duplicates")
        name = r["file_name"] + (f" ({r['failure']})" if r.get("failure") else "")
        table.add_row(f"{r['committed_at']:%Y-%m-%d %H:%M:%S}", name, *(f"{r[c]:,}" for c in counts))
    console.print(table if rows else "no batch has been ingested yet")


@app.command()
def quarantine(data_dir: DataDir = None) -> None:
    """Quarantined records per batch, with their reasons (never their values)."""
    from devicerisk.store import quarantine as store

    settings = Settings.at(data_dir)
    table = Table(title=f"quarantine ({settings.quarantine_dir})")
    for column in ("batch", "line", "reason"):
        table.add_column(column)
    for batch_id in store.batches(settings.quarantine_dir):
        for reject in store.reasons(settings.quarantine_dir, batch_id):
            table.add_row(batch_id, str(reject["line"]), str(reject["reason"]))
    console.print(table if table.row_count else "quarantine is empty")


@app.command("leak-scan")
def leak_scan(data_dir: DataDir = None) -> None:
    """Look for raw identifiers from the landing zone in every other file under the data directory."""
    from devicerisk.privacy.leakscan import scan_data_dir

    settings = Settings.at(data_dir)
    with console.status("scanning..."):
        report = scan_data_dir(settings.data_dir)
    console.print(f"scanned {report.files:,} files, {report.values:,} values")
    if report.findings:
        for finding in report.findings[:50]:
            console.print(f"[red]raw {finding.kind}[/red] in {finding.path} ({finding.where})")
        raise typer.Exit(1)
    console.print("[green]no raw identifier found outside the landing zone[/green]")


@app.command()
def share(
    out: Annotated[Path, typer.Option(help="Folder for cells.csv and report.md (the partner's copy).")],
    data_dir: DataDir = None,
    k: Annotated[int, typer.Option(min=2, help="Least distinct accounts a published cell describes.")] = 10,
    since: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD), widened to its week.")] = None,
    until: Annotated[str | None, typer.Option(help="Last day (YYYY-MM-DD), widened to its week.")] = None,
    actor: Annotated[str, typer.Option(help="Who exports (a short name, for the audit trail).")] = "analyst",
) -> None:
    """Export fraud rates by device model, region and week for a partner, k-anonymous (cells under k suppressed)."""
    from datetime import date

    from devicerisk.analytics import open_lake
    from devicerisk.analytics.share import export
    from devicerisk.governance.stores import audit_trail
    from devicerisk.store import audit

    settings = Settings.at(data_dir)
    first, last = (None if d is None else date.fromisoformat(d) for d in (since, until))
    with open_lake(settings.data_dir, purpose="risk_control", actor=actor) as lake:
        result = export(lake, first, last, k)
    csv, report = result.write(out)
    audit.append(
        audit_trail(settings),
        actor=actor,
        role="analyst",
        action="share_export",
        purpose="risk_control",
        counts={"cells": result.cells.num_rows, "cells_suppressed": result.suppressed, "k": k},
    )
    console.print(
        f"{result.cells.num_rows:,} cells of at least {k} accounts in {csv}; {result.suppressed:,} suppressed"
    )
    console.print(f"report: {report}")


def _head(text: str | None) -> tuple[int, str] | None:
    seq, sep, digest = (text or "").partition(":")
    if text is not None and not (sep and seq.isdigit() and len(digest) == 64):
        raise typer.BadParameter("give the head as SEQ:HASH, as `audit verify` prints it")
    return None if text is None else (int(seq), digest)


@audit_app.command("verify")
def audit_verify(
    data_dir: DataDir = None,
    head: Annotated[
        str | None, typer.Option(help="A head SEQ:HASH kept off this machine: the log must still hold it.")
    ] = None,
) -> None:
    """Check the audit chain with the audit key, and that the log covers what the stores record; exits non-zero
    and says where if a record was edited, removed or moved, or the log was cut or deleted."""
    from devicerisk.governance.audit_check import check
    from devicerisk.governance.stores import audit_trail
    from devicerisk.store import audit

    settings = Settings.at(data_dir)
    problems = check(audit_trail(settings), settings.warehouse_path, _head(head))
    if problems:
        for problem in problems:
            console.print(f"[red]audit log line {problem.line}:[/red] {problem.reason}")
        raise typer.Exit(1)
    kept = audit.records(settings.audit_dir)
    last = f"; head {kept[-1]['seq']}:{kept[-1]['hash']} (keep it off this machine)" if kept else ""
    console.print(f"audit log intact: {len(kept):,} records{last}", soft_wrap=True)


@audit_app.command("show")
def audit_show(data_dir: DataDir = None, last: Annotated[int, typer.Option(min=1)] = 20) -> None:
    """The newest audit records."""
    from devicerisk.store import audit

    table = Table(title="audit trail")
    for column in ("seq", "at", "actor", "role", "action", "purpose", "counts"):
        table.add_column(column)
    for r in audit.records(Settings.at(data_dir).audit_dir)[-last:]:
        counts = ", ".join(f"{k}={v:,}" for k, v in r["counts"].items())
        table.add_row(str(r["seq"]), str(r["at"]), r["actor"], r["role"], r["action"], r["purpose"], counts)
    console.print(table)


@contract_app.command("docs")
def contract_docs(
    out: Annotated[Path, typer.Option(help="Folder for the generated files.")] = Path("docs"),
    check: Annotated[bool, typer.Option(help="Only check that the files are up to date.")] = False,
) -> None:
    """Write docs/data-contract.md and the JSON Schema from the contract declaration."""
    from devicerisk.contract.docs import generated_docs, write_docs

    if check:
        stale = [
            name
            for name, text in generated_docs().items()
            if not (out / name).exists() or (out / name).read_text() != text
        ]
        if stale:
            console.print(f"[red]out of date:[/red] {', '.join(stale)}; run `devicerisk contract docs`")
            raise typer.Exit(1)
        console.print("contract docs are up to date")
        return
    for path in write_docs(out):
        console.print(f"wrote {path}")


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logging, and the whole trace of an error.")
    ] = False,
) -> None:
    configure(verbose)


if __name__ == "__main__":
    app()
