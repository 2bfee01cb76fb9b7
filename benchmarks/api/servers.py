"""Start and stop the servers under test on loopback: `memberscore serve`, `feast serve` and
`mlflow models serve`, each a child process on a free port, stopped by its own process id."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Server:
    """A running server: where it listens and its process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running(
    name: str,
    command: Sequence[str],
    env: Mapping[str, str],
    port: int,
    ready_path: str,
    log: Path,
    timeout: float = 180.0,
) -> Iterator[Server]:
    """Start `command` in its own process group, wait until GET `ready_path` answers 200,
    and stop it (SIGTERM to its group, then SIGKILL) when the block ends."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(name, process, f"http://{HOST}:{port}{ready_path}", timeout, log)
        yield Server(name, port, process)
    finally:
        _stop(process)


def _wait_ready(
    name: str, process: subprocess.Popen[bytes], url: str, timeout: float, log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{name} not ready at {url} after {timeout:.0f} s; see {log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server's own process group (its workers included)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def memberscore_command(port: int, workers: int) -> list[str]:
    return [
        str(BIN / "memberscore"), "serve", "--host", HOST, "--port", str(port),
        "--workers", str(workers), "--log-level", "warning",
    ]  # fmt: skip


def feast_command(repo: Path, port: int, workers: int) -> list[str]:
    return [
        str(BIN / "feast"), "-c", str(repo), "serve", "-h", HOST, "-p", str(port),
        "-w", str(workers), "--max-requests", "0", "--no-access-log",
    ]  # fmt: skip


def mlflow_command(model_uri: str, port: int, workers: int) -> list[str]:
    return [
        str(BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local",
        "-h", HOST, "-p", str(port), "-w", str(workers),
    ]  # fmt: skip


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment with the venv's bin first on PATH (MLflow's local env needs it)."""
    env = dict(os.environ) | dict(extra)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env
