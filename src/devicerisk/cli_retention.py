"""``devicerisk retention ...`` and ``devicerisk request ...``: purges, holds and data-subject requests.

Identifiers given on the command line are pseudonymised at once and never printed or stored; every
value shown is masked by :func:`devicerisk.privacy.masking.mask`. A request says how the requester's identity
was verified (6.4.2): the platform's signed ``--token``, or ``--verified-by NAME --method M``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from devicerisk.cli_runtime import DataDir, prepare_prefect
from devicerisk.config import Settings
from devicerisk.privacy.masking import mask

retention_app = typer.Typer(help="Retention purges, legal holds and the retention check.", no_args_is_help=True)
request_app = typer.Typer(
    help="Data-subject requests: access, erasure, cancellation, withdrawal, minors.", no_args_is_help=True
)
hold_app = typer.Typer(help="Legal holds (2.9(4), 4.5(4)).", no_args_is_help=True)
retention_app.add_typer(hold_app, name="hold")
console = Console()
errors = Console(stderr=True)

Account = Annotated[str | None, typer.Option("--account", help="The subject's account id.")]
Phone = Annotated[str | None, typer.Option("--phone", help="The subject's phone number.")]
Device = Annotated[list[str] | None, typer.Option("--device", help="A device id as KIND=VALUE (imei, mac, oaid...).")]
Actor = Annotated[str, typer.Option(help="Who carries this out (a short name, for the audit trail).")]
Token = Annotated[
    str | None, typer.Option("--token", help="The platform's signed token verifying the requester (6.4.2).")
]
VerifiedBy = Annotated[
    str | None, typer.Option("--verified-by", help="Who verified the requester's identity, with --method (6.4.2).")
]
Method = Annotated[str | None, typer.Option("--method", help="How they verified it: in_person, documents, callback.")]


def _stores(data_dir: Path | None) -> Any:
    from devicerisk.governance.retention import RetentionConfigError
    from devicerisk.governance.stores import stores_for
    from devicerisk.privacy.keys import MissingKeyError

    try:
        return stores_for(Settings.at(data_dir))
    except (RetentionConfigError, MissingKeyError) as err:
        _fail(str(err))


def _identifiers(account: str | None, phone: str | None, device: list[str] | None) -> Any:
    from devicerisk.governance.subjects import Identifiers

    devices: dict[str, str] = {}
    for item in device or []:
        kind, sep, value = item.partition("=")
        if not sep:
            _fail("--device takes KIND=VALUE, e.g. imei=...")
        devices[kind.strip().lower()] = value
    return Identifiers(account_id=account, phone=phone, devices=devices)


def _claim(token: str | None, verified_by: str | None, method: str | None) -> Any:
    """How the requester was verified, from the options; None when not at all (the request is then rejected)."""
    from devicerisk.governance import verification

    if token is not None and (verified_by is not None or method is not None):
        _fail("give --token, or --verified-by with --method, not both")
    if token is not None:
        return verification.platform(token)
    if (verified_by is None) != (method is None):
        _fail("--verified-by and --method go together")
    if method is None or verified_by is None:
        return None
    manual = [m.value for m in verification.Method if m is not verification.Method.PLATFORM_TOKEN]
    if method not in manual:
        _fail(f"--method is one of {', '.join(manual)} (a platform check is given as --token)")
    return verification.manual(method, verified_by)


def _fail(message: str, code: int = 2) -> None:
    """A refused command: one line on stderr (never wrapped), and exit code 2."""
    errors.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(code)


def _now() -> datetime:
    return datetime.now(UTC)


@retention_app.command("purge")
def purge(data_dir: DataDir = None) -> None:
    """Run the retention purge now (the daily `retention` flow)."""
    prepare_prefect()
    from devicerisk.flows.retention import retention_flow

    print_purge(retention_flow(None if data_dir is None else str(data_dir)).counts())


def print_purge(counts: dict[str, int]) -> None:
    """The purge's counts as a table."""
    table = Table(title="retention purge")
    table.add_column("")
    table.add_column("count", justify="right")
    for name, n in counts.items():
        table.add_row(name, f"{n:,}")
    console.print(table)


def print_last_purge(audit_dir: Path) -> None:
    """The counts of the newest purge in the audit trail (the demo shows them after the pipeline)."""
    from devicerisk.store import audit

    purges = [r for r in audit.records(audit_dir) if r["action"] == "retention.purge"]
    if purges:
        print_purge(dict(purges[-1]["counts"]))  # type: ignore[arg-type]


@retention_app.command("verify")
def verify(data_dir: DataDir = None) -> None:
    """Exit non-zero if any store keeps a record past its class's period without a hold."""
    from devicerisk.governance.retention_check import verify as check

    violations = check(_stores(data_dir), _now())
    for v in violations:
        records = "unknown" if v.records < 0 else f"{v.records:,}"
        console.print(f"[red]{v.store}[/red] {v.where}: {records} records past the period of {v.retention_class}")
    if violations:
        raise typer.Exit(1)
    console.print("[green]every store keeps its records within their retention periods[/green]")


@retention_app.command("rekey-quarantine")
def rekey_quarantine(data_dir: DataDir = None) -> None:
    """Re-seal quarantined records sealed under a retired key with the current quarantine key."""
    from devicerisk.governance.rotation import KeyRingError
    from devicerisk.governance.rotation import rekey_quarantine as rekey

    try:
        moved = rekey(_stores(data_dir))
    except KeyRingError as err:
        _fail(str(err))
    console.print(f"re-sealed {moved:,} quarantined batches with the current key")


@hold_app.command("place")
def hold_place(
    reason: Annotated[str, typer.Option(help="Why (e.g. the case reference).")],
    owner: Annotated[str, typer.Option(help="Who owns the hold (a short name).")],
    days: Annotated[int, typer.Option(min=1, help="Days until the hold expires.")],
    account: Account = None,
    phone: Phone = None,
    data_dir: DataDir = None,
) -> None:
    """Suspend purging and erasure of one account's data."""
    from devicerisk.governance.holds import place

    now = _now()
    try:
        holds = place(
            _stores(data_dir),
            _identifiers(account, phone, None),
            reason=reason,
            owner=owner,
            expires_at=now + timedelta(days=days),
            now=now,
        )
    except (ValueError, LookupError) as err:
        _fail(str(err))
    for h in holds:
        console.print(f"placed hold {h.hold_id} on account {mask(h.subject_pid)} until {h.expires_at:%Y-%m-%d}")


@hold_app.command("release")
def hold_release(hold_id: str, actor: Actor = "legal", data_dir: DataDir = None) -> None:
    """Release a hold; the next purge removes what it kept that has expired."""
    from devicerisk.governance.holds import release

    try:
        release(_stores(data_dir), hold_id, actor=actor, now=_now())
    except ValueError as err:
        _fail(str(err))
    console.print(f"released hold {hold_id}")


@hold_app.command("list")
def hold_list(data_dir: DataDir = None) -> None:
    """Every hold, with its account masked."""
    from devicerisk.store import governance

    settings = Settings.at(data_dir)
    table = Table(title="legal holds")
    for column in ("hold", "account", "owner", "reason", "expires", "state"):
        table.add_column(column)
    now = _now()
    for h in governance.holds(settings.warehouse_path):
        state = "active" if h.active(now) else ("released" if h.released_at else "expired")
        table.add_row(h.hold_id, mask(h.subject_pid), h.owner, h.reason, f"{h.expires_at:%Y-%m-%d}", state)
    console.print(table)


def _submit(
    kind: str, data_dir: Path | None, ids: Any, claim: Any, actor: str, options: dict[str, Any] | None = None
) -> None:
    from devicerisk.governance import requests
    from devicerisk.privacy.keys import MissingKeyError

    stores = _stores(data_dir)
    try:
        # as the flows' tasks do, it waits for the warehouse's writer lock: no Prefect server to start
        row = requests.submit(
            stores, requests.RequestKind(kind), ids, _now(), verification=claim, options=options, actor=actor
        )
    except (ValueError, LookupError, MissingKeyError) as err:
        _fail(str(err))
    console.print(f"request {row.request_id} ({row.kind}): {row.status}")
    for store, n in (row.found or {}).items():
        console.print(f"  {store}: {n:,} records")
    if row.status != requests.Status.COMPLETED:
        console.print("  it completes when the vacuum grace period has passed (`devicerisk request resume`)")
    else:
        console.print(f"  files: {stores.requests_dir / row.request_id}")


@request_app.command("access")
def access(
    account: Account = None,
    phone: Phone = None,
    device: Device = None,
    token: Token = None,
    verified_by: VerifiedBy = None,
    method: Method = None,
    actor: Actor = "privacy-officer",
    data_dir: DataDir = None,
) -> None:
    """Export everything held about the subject (6.2.1): JSON, CSV and a summary, identifiers masked."""
    _submit("access", data_dir, _identifiers(account, phone, device), _claim(token, verified_by, method), actor)


@request_app.command("erase")
def erase(
    account: Account = None,
    phone: Phone = None,
    device: Device = None,
    token: Token = None,
    verified_by: VerifiedBy = None,
    method: Method = None,
    actor: Actor = "privacy-officer",
    data_dir: DataDir = None,
) -> None:
    """Delete the subject from every store, then vacuum (6.2.2)."""
    _submit("erasure", data_dir, _identifiers(account, phone, device), _claim(token, verified_by, method), actor)


@request_app.command("cancel")
def cancel(
    mode: Annotated[str, typer.Option(help="delete, or anonymise (keep only counts with no link to the account)")],
    account: Account = None,
    phone: Phone = None,
    token: Token = None,
    verified_by: VerifiedBy = None,
    method: Method = None,
    actor: Actor = "privacy-officer",
    data_dir: DataDir = None,
) -> None:
    """Cancel an account (6.3): delete its data, or anonymise it; later events are dropped at ingest."""
    claim = _claim(token, verified_by, method)
    _submit("cancellation", data_dir, _identifiers(account, phone, None), claim, actor, {"mode": mode})


@request_app.command("withdraw")
def withdraw(
    purpose: Annotated[str, typer.Option(help="The purpose consent is withdrawn for.")],
    account: Account = None,
    phone: Phone = None,
    token: Token = None,
    verified_by: VerifiedBy = None,
    method: Method = None,
    actor: Actor = "privacy-officer",
    data_dir: DataDir = None,
) -> None:
    """Withdraw consent for a purpose (6.1): the next ingest drops it; data before stays (6.1.2)."""
    claim = _claim(token, verified_by, method)
    _submit("withdrawal", data_dir, _identifiers(account, phone, None), claim, actor, {"purpose": purpose})


@request_app.command("minor")
def minor(
    account: Account = None,
    phone: Phone = None,
    token: Token = None,
    verified_by: VerifiedBy = None,
    method: Method = None,
    actor: Actor = "privacy-officer",
    data_dir: DataDir = None,
) -> None:
    """Delete a minor's data collected without verifiable guardian consent (7.2); later events are dropped."""
    _submit("minor", data_dir, _identifiers(account, phone, None), _claim(token, verified_by, method), actor)


@request_app.command("resume")
def resume(data_dir: DataDir = None) -> None:
    """Carry on pending requests (interrupted, or waiting for the vacuum grace period)."""
    prepare_prefect()
    from devicerisk.flows.requests import request_flow

    for request_id, status in request_flow(None if data_dir is None else str(data_dir)).items():
        console.print(f"request {request_id}: {status}")


@request_app.command("list")
def list_requests(data_dir: DataDir = None) -> None:
    """Every request and its status (subjects are not shown)."""
    from devicerisk.store import governance

    settings = Settings.at(data_dir)
    table = Table(title="data-subject requests")
    for column in ("request", "kind", "status", "received", "verified", "records", "note"):
        table.add_column(column)
    for r in governance.requests(settings.warehouse_path):
        records = f"{sum((r.found or {}).values()):,}"
        verified = r.verification["method"] if r.verification else ""
        received = f"{r.received_at:%Y-%m-%d %H:%M}"
        table.add_row(r.request_id, r.kind, r.status, received, verified, records, r.reason or "")
    console.print(table)
