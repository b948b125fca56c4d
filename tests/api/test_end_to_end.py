"""The fraud team's two commands, end to end: `devicerisk serve` as its own process on loopback over a scored lake,
then `devicerisk lookup top` (with a key from `devicerisk keys create`, or the demo key) shows the top-risk
account with its reasons, as the serving snapshot holds them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pyarrow.compute as pc

from devicerisk.config import Settings
from devicerisk.store import audit, serving
from factories import free_port

BIN = Path(sys.executable).parent / "devicerisk"


def _env(settings: Settings, mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICERISK_")}
    env |= {"DEVICERISK_MODE": mode, "DEVICERISK_DATA_DIR": str(settings.data_dir)}
    env["DEVICERISK_SECRETS_DIR"] = str(settings.secrets_dir)
    if mode == "production":
        for name in ("pseudonym", "quarantine", "audit"):
            env[f"DEVICERISK_{name.upper()}_KEY_FILE"] = str(getattr(settings, f"{name}_key_file"))
    return env


@contextmanager
def serve(env: dict[str, str], cwd: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    cmd = [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(30)


def _top_account(settings: Settings) -> dict[str, object]:
    """The review queue's first account, computed plainly: the highest score of the newest day."""
    accounts = serving.read(settings.serving_dir, serving.ACCOUNTS)
    assert accounts is not None and accounts.num_rows
    newest = accounts.filter(pc.equal(accounts.column("event_date"), pc.max(accounts.column("event_date"))))
    return max(newest.to_pylist(), key=lambda r: r["score"])


def test_a_created_key_looks_up_the_top_risk_account_with_its_reasons(lookup_lake: Settings, tmp_path: Path) -> None:
    env = _env(lookup_lake, "production")
    with serve(env, tmp_path) as (url, _):
        made = subprocess.run(
            [str(BIN), "keys", "create", "--role", "fraud_analyst", "--name", "e2e-analyst"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        key = made.stdout.strip().splitlines()[-1]
        assert key.startswith("drk_")
        looked = subprocess.run(
            [str(BIN), "lookup", "top", "--limit", "1"],
            env={**env, "DEVICERISK_API_KEY": key, "DEVICERISK_API_URL": url},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
    top = _top_account(lookup_lake)
    assert f"score: {top['score']:.2f}" in looked.stdout and f"level: {top['level']}" in looked.stdout
    assert top["reasons"] and f"reasons: {'; '.join(top['reasons'])}" in looked.stdout
    assert str(top["account_id_pid"]) not in looked.stdout and "account_ref: acc_" in looked.stdout
    assert key not in (lookup_lake.audit_dir / audit.LOG_NAME).read_text()
    assert audit.records(lookup_lake.audit_dir)[-1]["actor"] == "e2e-analyst"


def test_in_demo_mode_serve_makes_the_key_that_lookup_finds(lookup_lake: Settings, tmp_path: Path) -> None:
    env = _env(lookup_lake, "demo")
    with serve(env, tmp_path) as (url, proc):
        looked = subprocess.run(
            [str(BIN), "lookup", "top", "--limit", "1"],
            env={**env, "DEVICERISK_API_URL": url},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "DEMO MODE" in err and str(lookup_lake.secrets_dir / "api.key") in err
    assert "reasons: " in looked.stdout and "account_ref: acc_" in looked.stdout
    refused = subprocess.run(
        [str(BIN), "lookup", "top"],
        env={**env, "DEVICERISK_API_URL": url, "DEVICERISK_MODE": "production"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1 and "no API key" in refused.stderr  # production never reads the demo key
