"""What every ``devicerisk`` command shares: the data-directory option, one-line errors, logging, and a
private Prefect home.

An exception that escapes a command is printed as one line on stderr with exit code 1; ``--verbose``
shows the whole trace (without local variables, which may hold keys or identifiers). Commands that
run flows start Prefect's ephemeral server with its home and database readable by the owner only.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

#: For CLI commands that run flows: the server named by ``PREFECT_API_URL`` when there is one (``devicerisk up``
#: prints it), else ephemeral mode (no server to start, patient on a loaded machine); quiet, with the library's
#: logs in flow-run logs. Commands that run no flow never import Prefect.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "devicerisk",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}
_verbose = False

#: The option every command that reads or writes the stores takes.
DataDir = Annotated[Path | None, typer.Option(help="Data directory (default: DEVICERISK_DATA_DIR or ./data).")]


def one_line(err: BaseException) -> str:
    """The error as one line: settings errors name the variable; errors of other libraries their type."""
    if isinstance(err, ValidationError):
        fields = [
            (f"DEVICERISK_{'_'.join(map(str, e['loc'])).upper()}" if e["loc"] else "settings", e["msg"])
            for e in err.errors()
        ]
        return "invalid settings: " + "; ".join(f"{name}: {msg}" for name, msg in fields)
    text = " ".join(str(err).split())
    if type(err).__module__.startswith("devicerisk"):
        return text or type(err).__name__
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class App(typer.Typer):
    """The top-level app: the one place where an error that escapes a command becomes one line."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as err:
            if _verbose:
                raise
            print(f"error: {one_line(err)} (--verbose shows the trace)", file=sys.stderr)
            sys.exit(1)


class _RunTracebacks(logging.Filter):
    """Without --verbose, drop Prefect's log of an exception in a run: the command reports it as its one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _verbose or not (record.exc_info and record.name.startswith("prefect"))


def configure(verbose: bool) -> None:
    """Logging on stderr (debug with --verbose) and the error mode of :class:`App`."""
    global _verbose
    _verbose = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _RunTracebacks) for f in handler.filters):
            handler.addFilter(_RunTracebacks())
    if not verbose:  # each call to the embedded Prefect server would log a line: noise for an operator
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)


def private_home(home: Path) -> Path:
    """Create Prefect's home owner-only and make what is already in it (its database, from older runs) so too."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
    for entry in home.iterdir():
        if entry.is_file() and not entry.is_symlink():
            os.chmod(entry, 0o600)
    return home


def prepare_prefect() -> None:
    """Before a command runs a flow: ephemeral Prefect, and its logs and artifacts readable by the owner only.

    The umask makes every file the ephemeral server creates later (``prefect.db``, its journal, logs)
    owner-only; the home is created, or tightened, before Prefect first reads its settings.
    """
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.umask(0o077)
    private_home(Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser())
    from prefect.settings import get_current_settings

    private_home(get_current_settings().home)  # the same folder, unless a profile or prefect.toml names another
