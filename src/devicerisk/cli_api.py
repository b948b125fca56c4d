"""``devicerisk keys`` (the lookup service's API keys) and ``devicerisk serve`` (the service, under uvicorn)."""

from __future__ import annotations

import sys
import threading
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from devicerisk.cli_runtime import DataDir, one_line
from devicerisk.config import Mode, Settings

keys_app = typer.Typer(help="API keys of the lookup service: create, revoke, list (hashes only are stored).")
console = Console()


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="fraud_analyst, auditor or admin.")],
    name: Annotated[str, typer.Option(help="Who holds the key (a short name: the audit trail's actor).")],
    data_dir: DataDir = None,
) -> None:
    """Create a key; it is printed once, on the last line, and never stored (only its hash is)."""
    from devicerisk.store import api_keys

    record, key = api_keys.create(Settings.at(data_dir).api_keys_path, role, name)
    console.print(f"created key {record.key_id} for {record.name} ({record.role}); it is shown once, below:")
    print(key)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's id or its holder's name.")], data_dir: DataDir = None
) -> None:
    """Revoke a key: the running service refuses it from its next request."""
    from devicerisk.store import api_keys

    revoked = api_keys.revoke(Settings.at(data_dir).api_keys_path, key)
    if not revoked:
        console.print("no active key has this id or name")
        raise typer.Exit(1)
    for k in revoked:
        console.print(f"revoked key {k.key_id} of {k.name} ({k.role})")


@keys_app.command("list")
def keys_list(data_dir: DataDir = None) -> None:
    """Every key: id, holder, role, dates (never a key or its hash)."""
    from devicerisk.store import api_keys

    table = Table(title="API keys")
    for column in ("key id", "name", "role", "created", "revoked"):
        table.add_column(column)
    for k in api_keys.listing(Settings.at(data_dir).api_keys_path):
        table.add_row(k.key_id, k.name, k.role, k.created_at[:19], (k.revoked_at or "")[:19])
    console.print(table)


def _warm(service: Any) -> None:
    """Open the real-time scorer off the request path, so the first score-now is as quick as the others."""
    try:
        service.scorer()
    except Exception as err:  # no model yet, say: score now answers 503 and tries again at its next request
        print(f"score now is not available yet: {one_line(err)}", file=sys.stderr)


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    data_dir: DataDir = None,
) -> None:
    """Run the lookup service (uvicorn, one worker). It needs no Prefect server: it reads the serving snapshots.

    In demo mode it creates a local fraud_analyst key in the secrets folder, which `devicerisk lookup` finds;
    production mode never does.
    """
    import uvicorn

    from devicerisk.api.app import create_app
    from devicerisk.store import api_keys

    settings = Settings.at(data_dir)
    if settings.mode is Mode.DEMO:
        key_file, created = api_keys.ensure_demo_key(settings.api_keys_path, settings.secrets_dir)
        what = "created" if created else "uses"
        print(
            f"DEMO MODE: {what} a local fraud_analyst API key in {key_file} (`devicerisk lookup` reads it). "
            "In production, create keys with `devicerisk keys create` and set DEVICERISK_MODE=production.",
            file=sys.stderr,
        )
    app = create_app(settings)
    service = app.state.service
    threading.Thread(target=_warm, args=(service,), name="score-now-open", daemon=True).start()
    console.print(f"lookup service on http://{host}:{port} (OpenAPI at /docs), data in {settings.data_dir}")
    uvicorn.run(app, host=host, port=port, workers=1, log_level="warning", server_header=False)
