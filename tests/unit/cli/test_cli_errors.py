"""The real `devicerisk` command in a subprocess: keys given explicitly, one-line errors, a private Prefect home."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from devicerisk.cli_runtime import private_home

ROOT = Path(__file__).resolve().parents[3]
INSTALLED = Path(sys.executable).with_name("devicerisk")
KEYS = ("pseudonym", "quarantine", "audit")


def devicerisk(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed command on this checkout's sources, as an operator runs it: no settings but ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DEVICERISK_", "PREFECT_"))}
    clean |= {
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        "PREFECT_HOME": str(cwd / "prefect-home"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "COLUMNS": "200",
    }
    command = [str(INSTALLED)] if INSTALLED.exists() else [sys.executable, "-m", "devicerisk.cli"]
    return subprocess.run([*command, *args], cwd=cwd, env=clean | env, capture_output=True, text=True, timeout=600)


def _key_files(folder: Path) -> dict[str, str]:
    """Key files as `make demo` leaves them in .secrets/ (and as a secret store would provide them)."""
    folder.mkdir(mode=0o700, exist_ok=True)
    for name in KEYS:
        (folder / f"{name}.key").write_text(secrets.token_hex(32))
    return {f"DEVICERISK_{name.upper()}_KEY_FILE": str(folder / f"{name}.key") for name in KEYS}


@pytest.fixture(scope="module")
def refused_ingest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`ingest` in production where a demo ran before, with a fresh Prefect home whose parent does not exist yet."""
    cwd = tmp_path_factory.mktemp("operator")
    _key_files(cwd / ".secrets")  # what `make demo` left behind
    home = cwd / "state" / "prefect-home"
    return home, devicerisk(cwd, "ingest", "--data-dir", "data", DEVICERISK_MODE="production", PREFECT_HOME=str(home))


def test_production_refuses_the_demo_keys_in_secrets_with_one_line(
    refused_ingest: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    home, run = refused_ingest
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 1 and len(lines) == 1, run.stderr[-3000:]  # the flow run failed: no Prefect traceback
    assert lines[0].startswith("error: no pseudonym key") and "DEVICERISK_PSEUDONYM_KEY_FILE" in lines[0]
    assert not (home.parents[1] / "data" / "lake").exists()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["audit", "verify"], {"DEVICERISK_MODE": "production"}, "error: no audit key: set DEVICERISK_AUDIT_KEY"),
        (["ledger"], {"DEVICERISK_MINOR_AGE": "twelve"}, "error: invalid settings: DEVICERISK_MINOR_AGE"),
        (["audit", "verify"], {"DEVICERISK_DATA_DIR": "keys", "DEVICERISK_SECRETS_DIR": "keys/s"}, "outside the data"),
    ],
)
def test_every_cli_error_is_one_line_and_verbose_shows_the_trace(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    _key_files(tmp_path / ".secrets")  # production must not use them
    run = devicerisk(tmp_path, *args, **env)
    assert run.returncode == 1 and run.stderr.count("\n") == 1 and message in run.stderr, run.stderr[-3000:]
    assert "Traceback" not in run.stderr + run.stdout
    verbose = devicerisk(tmp_path, "--verbose", *args, **env)
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr and verbose.stderr.count("\n") > 5


def test_prefect_home_and_database_are_owner_only(
    refused_ingest: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    home, _ = refused_ingest
    assert (home / "prefect.db").exists()  # the ephemeral server ran the (failed) flow run
    assert oct(home.stat().st_mode & 0o777) == oct(0o700)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in home.iterdir()}
    assert all(mode in (oct(0o600), oct(0o700)) for mode in modes.values()), modes


def test_a_prefect_home_left_readable_by_an_older_run_is_made_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    (home / "prefect.db").write_bytes(b"")
    os.chmod(home / "prefect.db", 0o644)
    private_home(home)
    assert home.stat().st_mode & 0o777 == 0o700 and (home / "prefect.db").stat().st_mode & 0o777 == 0o600
