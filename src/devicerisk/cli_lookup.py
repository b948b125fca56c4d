"""``devicerisk lookup``: one-off lookups through the running service, for someone who holds a key.

A thin HTTP client: it imports the standard library and typer only, so it answers in well under a second. The
key comes from ``DEVICERISK_API_KEY``, else the file named by ``DEVICERISK_API_KEY_FILE``, else (demo mode only)
the demo key ``devicerisk serve`` created in the secrets folder. Raw identifiers travel in a POST body, never in
a URL. What it prints is what the service answers: identifiers masked, pseudonyms as references.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer

lookup_app = typer.Typer(help="Look up risk through the running service (`devicerisk serve`).", no_args_is_help=True)

Url = Annotated[str, typer.Option(envvar="DEVICERISK_API_URL", help="The service's address.")]
Purpose = Annotated[str, typer.Option(help="Why you look it up (risk_control or account_management).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the service's JSON answer.")]
DEFAULT_URL = "http://127.0.0.1:8000"


def _key() -> str:
    """The caller's key: the environment, a key file, or (demo mode) the demo key; never printed."""
    if key := os.environ.get("DEVICERISK_API_KEY"):
        return key.strip()
    if key_file := os.environ.get("DEVICERISK_API_KEY_FILE"):
        return Path(key_file).read_text().strip()
    demo = Path(os.environ.get("DEVICERISK_SECRETS_DIR", ".secrets")) / "api.key"
    if os.environ.get("DEVICERISK_MODE", "demo").lower() == "demo" and demo.exists():
        return demo.read_text().strip()
    _fail("no API key: set DEVICERISK_API_KEY or DEVICERISK_API_KEY_FILE (`devicerisk keys create`)")
    raise AssertionError  # unreachable


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(1)


def call(url: str, method: str, path: str, purpose: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One request to the service; a problem answer becomes a one-line error."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"X-API-Key": _key(), "X-Purpose": purpose, "Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url.rstrip("/") + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        try:
            problem = json.loads(err.read())
            _fail(f"{problem.get('status', err.code)} {problem.get('title', '')}: {problem.get('detail', '')}")
        except ValueError:
            _fail(f"the service answered {err.code}")
    except urllib.error.URLError as err:
        _fail(f"cannot reach the service at {url} ({err.reason}): is `devicerisk serve` running?")
    raise AssertionError  # unreachable


def _show(answer: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer, indent=2, sort_keys=True))
        return
    for line in _lines(answer):
        print(line)


def _lines(answer: dict[str, Any], indent: str = "") -> list[str]:
    """A readable outline of an answer: scalars as ``name: value`` (scores to two decimals, unset ones left out),
    lists of reasons joined, rows indented (``--json`` gives every value as the service sent it)."""
    out: list[str] = []
    for name, value in answer.items():
        if value is None:
            continue
        if isinstance(value, float):
            out.append(f"{indent}{name}: {value:.2f}")
        elif isinstance(value, dict):
            out += [f"{indent}{name}:", *_lines(value, indent + "  ")]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out.append(f"{indent}{name}:")
            for i, row in enumerate(value, start=1):
                out += [f"{indent}  [{i}]", *_lines(row, indent + "    ")]
        elif isinstance(value, list):
            out.append(f"{indent}{name}: {'; '.join(map(str, value)) or '-'}")
        else:
            out.append(f"{indent}{name}: {value}")
    return out


@lookup_app.command("top")
def top(
    url: Url = DEFAULT_URL,
    purpose: Purpose = "risk_control",
    kind: Annotated[str, typer.Option(help="account or transaction.")] = "account",
    level: Annotated[str | None, typer.Option(help="highest, elevated or normal (default: every level).")] = None,
    day: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: the newest day scored).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 5,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: AsJson = False,
) -> None:
    """The review queue: the riskiest accounts (or transactions) of a day, with their reasons."""
    query = {"kind": kind, "limit": limit, "offset": offset, "level": level, "day": day}
    path = "/v1/queue?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
    _show(call(url, "GET", path, purpose), as_json)


def _by_ref(kind: str, ref: str, url: str, purpose: str, as_json: bool) -> None:
    _show(call(url, "GET", f"/v1/{kind}/{urllib.parse.quote(ref, safe='')}", purpose), as_json)


@lookup_app.command("account")
def account(
    ref: Annotated[str, typer.Argument(help="An account reference (account_ref) from an earlier answer.")],
    url: Url = DEFAULT_URL,
    purpose: Purpose = "risk_control",
    as_json: AsJson = False,
) -> None:
    """An account's latest risk, reasons and recent transaction scores."""
    _by_ref("accounts", ref, url, purpose, as_json)


@lookup_app.command("transaction")
def transaction(
    ref: Annotated[str, typer.Argument(help="A transaction reference (transaction_ref).")],
    url: Url = DEFAULT_URL,
    purpose: Purpose = "risk_control",
    as_json: AsJson = False,
) -> None:
    """A transaction's risk and reasons."""
    _by_ref("transactions", ref, url, purpose, as_json)


@lookup_app.command("device")
def device(
    ref: Annotated[str, typer.Argument(help="A device reference (device_ref).")],
    url: Url = DEFAULT_URL,
    purpose: Purpose = "risk_control",
    as_json: AsJson = False,
) -> None:
    """A device's accounts with their scores, and its device-graph signals."""
    _by_ref("devices", ref, url, purpose, as_json)


@lookup_app.command("id")
def by_identifier(
    kind: Annotated[
        str, typer.Argument(help="account, transaction, phone, or a device id kind: imei, idfa, oaid, mac, ...")
    ],
    url: Url = DEFAULT_URL,
    purpose: Purpose = "risk_control",
    as_json: AsJson = False,
) -> None:
    """Risk by a raw identifier, read from standard input (never from the command line, which shells keep) and
    sent in a request body (never a URL)."""
    value = sys.stdin.readline().strip() if not sys.stdin.isatty() else typer.prompt("identifier", hide_input=True)
    _show(call(url, "POST", "/v1/lookup", purpose, {"kind": kind, "value": value}), as_json)
