"""``devicerisk up`` and ``devicerisk down``: a local Prefect server, the work pool, the concurrency limit, every
deployment of ``prefect.yaml`` and a process worker, started and stopped with one command each.

Everything is local: the server listens on loopback and keeps its home and database in a state folder
(owner-only, files created under umask 077). The processes started are recorded there as PID files, with
their logs beside them; ``down`` stops exactly those (each in its own process group, so a worker's flow
runs stop with it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from devicerisk.cli_runtime import private_home

#: The work pool the deployments of prefect.yaml name, and the tag of the flows' warehouse-writing tasks.
POOL = "devicerisk"
WAREHOUSE_WRITER_TAG = "warehouse-writer"
SERVER, WORKER = "server", "worker"


class StackError(RuntimeError):
    """A step of bringing the stack up failed; the message says which and where its log is."""


@dataclass(frozen=True, slots=True)
class Stack:
    """Where a local stack lives: its state folder, the project it deploys, and the server's address."""

    state: Path
    project: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def pid_file(self, name: str) -> Path:
        return self.state / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.state / f"{name}.log"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of every process of the stack: this one's, pointed at the stack's home and server."""
        return {
            **os.environ,
            "PREFECT_HOME": str(self.state / "home"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_CLI_PROMPT": "false",
            "PREFECT_LOGGING_EXTRA_LOGGERS": "devicerisk",
            **(extra or {}),
        }


def running(stack: Stack, name: str) -> int | None:
    """The PID of the stack's ``name`` process if its PID file names a live Prefect process, else None."""
    import psutil

    try:
        pid = int(stack.pid_file(name).read_text())
        alive = psutil.Process(pid)
        return pid if alive.is_running() and "prefect" in " ".join(alive.cmdline()) else None
    except (FileNotFoundError, ValueError, psutil.Error):
        return None


def _start(stack: Stack, name: str, args: list[str], env: Mapping[str, str]) -> int:
    """Start ``prefect ARGS`` in its own session, logging to the state folder, and record its PID."""
    with stack.log_file(name).open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", *args],
            cwd=stack.project,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack.pid_file(name).write_text(str(proc.pid))
    return proc.pid


def _prefect(stack: Stack, args: list[str], env: Mapping[str, str], timeout: float = 300) -> None:
    """Run one ``prefect`` command to completion; its output joins the stack's setup log."""
    with stack.log_file("setup").open("ab") as log:
        done = subprocess.run(
            [sys.executable, "-m", "prefect", *args],
            cwd=stack.project,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
    if done.returncode != 0:
        raise StackError(f"`prefect {' '.join(args)}` failed (exit {done.returncode}); see {stack.log_file('setup')}")


def wait_healthy(stack: Stack, timeout: float = 180) -> None:
    """Wait until the server answers its health check; fail at once if it exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{stack.api_url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if running(stack, SERVER) is None:
            raise StackError(f"the Prefect server exited while starting; see {stack.log_file(SERVER)}")
        time.sleep(0.5)
    raise StackError(f"the Prefect server did not answer within {timeout:.0f} s; see {stack.log_file(SERVER)}")


def serve(
    stack: Stack, extra_env: Mapping[str, str] | None = None, server_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Start the server (unless running) and wait until it answers; returns the stack's environment, with
    ``extra_env``, for the processes that use the server (``server_env`` is the server's alone)."""
    os.umask(0o077)  # the server's database, the logs and PID files: owner-only
    private_home(stack.state)
    private_home(stack.state / "home")
    env = stack.env(extra_env)
    if running(stack, SERVER) is None:
        _start(
            stack,
            SERVER,
            ["server", "start", "--host", stack.host, "--port", str(stack.port)],
            {**env, **(server_env or {})},
        )
    wait_healthy(stack)
    return env


def up(stack: Stack, extra_env: Mapping[str, str] | None = None, server_env: Mapping[str, str] | None = None) -> None:
    """Start the server (unless running), create the pool and limit, deploy everything, start a worker (unless
    running). ``extra_env`` reaches every process (the worker's flow runs: DEVICERISK_* settings)."""
    env = serve(stack, extra_env, server_env)
    _prefect(stack, ["work-pool", "create", POOL, "--type", "process", "--overwrite"], env)
    _prefect(stack, ["concurrency-limit", "create", WAREHOUSE_WRITER_TAG, "1"], env)
    _prefect(stack, ["deploy", "--all"], env)
    if running(stack, WORKER) is None:
        _start(stack, WORKER, ["worker", "start", "--pool", POOL, "--type", "process"], env)


def down(stack: Stack, wait: float = 30) -> list[str]:
    """Stop what ``up`` started (worker first), each with its process group; returns the names stopped."""
    stopped = []
    for name in (WORKER, SERVER):
        pid = running(stack, name)
        if pid is not None:
            _stop_group(pid, wait)
            stopped.append(name)
        stack.pid_file(name).unlink(missing_ok=True)
    return stopped


def _stop_group(pid: int, wait: float) -> None:
    """SIGTERM the process group ``pid`` leads (it was started in its own session), then SIGKILL what is left."""
    import psutil

    try:
        os.killpg(pid, signal.SIGTERM)
        psutil.Process(pid).wait(timeout=wait)
    except (ProcessLookupError, psutil.NoSuchProcess, psutil.TimeoutExpired):
        pass
    with suppress(ProcessLookupError):  # what outlived the leader, or a leader that did not stop in time
        os.killpg(pid, signal.SIGKILL)


State = Annotated[
    Path, typer.Option(help="Folder for the server's home and database, the PID files and logs (owner-only).")
]
Port = Annotated[int, typer.Option(help="Port of the Prefect server on 127.0.0.1.")]


def up_command(state: State = Path(".prefect-server"), port: Port = 4200) -> None:
    """Start a local Prefect server, create the work pool and limit, deploy everything, start a worker."""
    stack = Stack(state.resolve(), Path.cwd(), port)
    if not (stack.project / "prefect.yaml").exists():
        raise StackError("run `devicerisk up` from the project folder (where prefect.yaml is)")
    typer.echo(f"starting the Prefect server on {stack.ui_url} (logs in {stack.state})...")
    up(stack)
    typer.echo(f"deployments registered, worker started (pool {POOL!r}).")
    typer.echo(f"UI: {stack.ui_url}")
    typer.echo(f"To run flows from the command line on this server: export PREFECT_API_URL={stack.api_url}")


def down_command(state: State = Path(".prefect-server")) -> None:
    """Stop the worker and the server that `devicerisk up` started."""
    stopped = down(Stack(state.resolve(), Path.cwd(), port=0))  # found by their PID files
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing started by `devicerisk up` is running")
