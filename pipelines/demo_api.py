"""The score-API part of the demo: start `memberscore serve` in a child process, call each
endpoint once as a CRM system would, print the answers, and stop the server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import typer

from memberscore.errors import MemberscoreError
from memberscore.settings import Settings

START_TIMEOUT_S = 120.0
MAX_SHOWN_CHARS = 1_200


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(settings: Settings, key_hash: str) -> dict[str, str]:
    """Environment of the server process: the demo's settings and one write-scope API key."""
    env = dict(os.environ)
    env.update(
        MEMBERSCORE_DATA_DIR=str(settings.data_dir.resolve()),
        MEMBERSCORE_FEAST_REPO=str(settings.feast_repo.resolve()),
        MEMBERSCORE_MLFLOW_TRACKING_URI=settings.mlflow_tracking_uri,
        MEMBERSCORE_MLFLOW_ARTIFACT_ROOT=str(settings.mlflow_artifact_root.resolve()),
        MEMBERSCORE_CLV_HORIZON_DAYS=str(settings.clv_horizon_days),
        MEMBERSCORE_SERVING=json.dumps({"api_keys": [[key_hash, "write"]]}),
    )
    return env


@contextmanager
def running_server(settings: Settings, key_hash: str) -> Iterator[str]:
    """Start the API on a free loopback port, wait until /readyz answers 200, yield its base
    URL, and stop it on exit (also when the caller fails)."""
    port = free_port()
    command = [sys.executable, "-m", "pipelines", "serve", "--port", str(port)]
    command += ["--log-level", "warning"]
    process = subprocess.Popen(command, env=server_env(settings, key_hash))
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    """Poll /readyz until it answers 200; fail with its last reasons otherwise."""
    deadline, last = time.monotonic() + START_TIMEOUT_S, "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise MemberscoreError(f"the score API exited with code {process.returncode}")
        try:
            answer = httpx.get(f"{base}/readyz", timeout=2.0)
            if answer.status_code == 200:
                return
            last = answer.text
        except httpx.TransportError as error:
            last = str(error)
        time.sleep(0.5)
    raise MemberscoreError(f"the score API was not ready after {START_TIMEOUT_S:.0f} s: {last}")


def tour(settings: Settings, member_ids: Sequence[str]) -> None:
    """Call every endpoint once for `member_ids` (first: a buyer, second: never ordered) and
    print each answer, shortened."""
    from serving.api.security import hash_key, new_key

    key = new_key()
    with running_server(settings, hash_key(key)) as base:
        typer.echo(f"score API up at {base} (OpenAPI docs at {base}/docs)")
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=auth, timeout=30.0) as client:
            for method, path, body in _calls(member_ids):
                answer = client.request(method, path, json=body)
                _show(method, path, answer)
                if answer.status_code >= 400:
                    raise MemberscoreError(f"{method} {path} answered {answer.status_code}")
    typer.echo("score API stopped")


def _calls(member_ids: Sequence[str]) -> list[tuple[str, str, Any]]:
    """(method, path, JSON body) of one call per endpoint."""
    first = member_ids[0]
    contact = {"member_id": first, "action_id": "benefit_reminder", "channel": "email"}
    contact["contact_id"] = f"demo-{first}"
    opt_out = {
        "consent_marketing": True,
        "consent_personalization": False,
        "channels_opted_out": ["sms"],
    }
    return [
        ("GET", "/healthz", None),
        ("GET", "/readyz", None),
        ("GET", "/v1/models", None),
        *[("GET", f"/v1/members/{member}/scores", None) for member in member_ids],
        ("POST", "/v1/scores", {"member_ids": list(member_ids)}),
        ("GET", f"/v1/members/{first}/next-best-action", None),
        ("POST", "/v1/next-best-action", {"member_ids": list(member_ids)}),
        ("POST", "/v1/contacts", contact),
        ("POST", f"/v1/contacts/{contact['contact_id']}/responses", {"value": 25.0}),
        ("GET", f"/v1/contacts/{contact['contact_id']}", None),
        # A mis-recorded contact is corrected, then (say, sent by mistake) deleted.
        ("PATCH", f"/v1/contacts/{contact['contact_id']}", {"channel": "app"}),
        ("DELETE", f"/v1/contacts/{contact['contact_id']}", None),
        # The last member turns personalisation off and refuses SMS: the next decision is
        # generic and never on SMS.
        ("PUT", f"/v1/members/{member_ids[-1]}/consent", opt_out),
        ("GET", f"/v1/members/{member_ids[-1]}/consent", None),
        ("GET", f"/v1/members/{member_ids[-1]}/next-best-action", None),
        # An erasure request for an id the programme never had: recorded, nothing removed
        # (the demo's last step erases a real member with `memberscore erase`).
        ("DELETE", f"/v1/members/demo-{first}", None),
        ("POST", "/v1/admin/reload", None),
        ("GET", "/metrics", None),
    ]


def _show(method: str, path: str, answer: httpx.Response) -> None:
    """Print one call and its answer; long answers are cut, Prometheus text to a few lines."""
    typer.secho(f"\n{method} {path} -> {answer.status_code}", bold=True)
    if not answer.content:
        text = "(no content)"
    elif answer.headers.get("content-type", "").startswith("application/json"):
        text = json.dumps(answer.json(), indent=1, default=str)
    else:
        lines = [line for line in answer.text.splitlines() if line.startswith("memberscore_")]
        text = "\n".join(lines[:8]) + f"\n... ({len(lines)} metric lines)"
    if len(text) > MAX_SHOWN_CHARS:
        text = text[:MAX_SHOWN_CHARS] + "\n... (cut)"
    typer.echo(text)
