"""`pointbridge run --workers N`: several web processes, the background work once."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from pointbridge.delivery.admin import outbox_status
from pointbridge.plugins import PluginHost
from pointbridge.services import Services
from pointbridge.settings import Settings
from pointbridge.web.cli import cli
from pointbridge.web.serve import forward_wakeups, wake_socket

T = TypeVar("T")
CREDITS = 24


def wait_for(condition: Callable[[], T], what: str, timeout: float = 60) -> T:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)
    return value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=30).ok
    except requests.RequestException:
        return False


@pytest.fixture
def plugin_host() -> PluginHost:
    # The dry-run plugin alone, as the server below loads it (POINTBRIDGE_PLUGINS).
    return PluginHost({"jsonl"})


@pytest.fixture
def server(
    app: Flask, settings: Settings, token: str, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """`pointbridge run --workers 2` on a free port and the test's database; its base URL, its
    process and its log."""
    result = app.test_cli_runner().invoke(
        cli,
        ["integrations", "add", "dry", "--plugin", "jsonl", "--set", f"path={tmp_path}/o.jsonl"],
    )
    assert result.exit_code == 0, result.output
    port = free_port()
    env = {
        **os.environ,
        "POINTBRIDGE_DATABASE_URL": settings.database_url,
        "POINTBRIDGE_SECRET_KEY": settings.secret_key or "",
        "POINTBRIDGE_INSTANCE": str(settings.instance_path),
        "POINTBRIDGE_PLUGINS": "jsonl",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "server.log"
    pointbridge = str(Path(sys.executable).with_name("pointbridge"))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [pointbridge, "run", "--workers", "2", "--threads", "4", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(f"{base}/api/openapi.json"), "the server to answer")
        yield base, process, log
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)


def test_two_web_processes_share_one_worker_and_one_scheduler(
    server: tuple[str, subprocess.Popen[bytes], Path],
    services: Services,
    auth: dict[str, str],
    tmp_path: Path,
) -> None:
    base, process, log = server
    customer = requests.post(
        f"{base}/api/customers", json={"email": "jana@example.com"}, headers=auth, timeout=30
    ).json()

    def credit(n: int) -> int:
        return requests.post(
            f"{base}/api/customers/{customer['id']}/transactions",
            json={"points": 5, "reason": "order", "reference": f"order-{n}"},
            headers=auth,
            timeout=60,
        ).status_code

    # Both web processes write at once; SQLite's writers queue instead of failing.
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(credit, range(CREDITS)))
    assert statuses == [201] * CREDITS

    wait_for(
        lambda: all(line.pending == 0 for line in outbox_status(services.db)),
        "the outbox to be delivered",
    )
    lines = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    events = [line for line in lines if line["kind"] == "event"]
    # Each points change reached the platform once: one delivery worker, one lease holder.
    assert sorted(event["data"]["balance"] for event in events) == [
        5 * n for n in range(1, CREDITS + 1)
    ]
    assert len({event["uid"] for event in events}) == CREDITS
    assert [line["points"] for line in lines if line["kind"] == "contact"][-1] == 5 * CREDITS

    # The worker counted its deliveries in its own process; every web process reports them.
    delivered = f'pointbridge_delivered_total{{integration="dry",kind="event"}} {CREDITS}.0'
    for _ in range(6):
        assert delivered in requests.get(f"{base}/metrics", timeout=30).text

    output = log.read_text()
    assert len(re.findall(r"Booting worker with pid", output)) == 2
    assert len(re.findall(r"pointbridge.delivery.worker: worker \S+ started", output)) == 1
    assert len(re.findall(r"nightly expiry scheduled at", output)) == 1
    assert f"background work runs in process {process.pid}" in output

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    output = log.read_text()
    assert re.search(r"pointbridge.delivery.worker: worker \S+ stopped", output)
    assert not answers(f"{base}/api/openapi.json")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_web_processes_go_with_a_killed_run(
    server: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    base, process, _ = server
    process.kill()
    process.wait()
    wait_for(lambda: not answers(f"{base}/api/openapi.json"), "gunicorn to stop serving")


def test_a_commit_in_a_web_process_wakes_the_worker_of_another() -> None:
    committed, woken = threading.Event(), threading.Event()
    with wake_socket(woken) as path:
        threading.Thread(target=forward_wakeups, args=(committed, path), daemon=True).start()
        committed.set()
        assert woken.wait(timeout=30)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_write_that_waits_out_the_lock_is_told_to_retry(
    services: Services, client: FlaskClient, auth: dict[str, str], database_url: str
) -> None:
    # Writers wait up to busy_timeout; here none at all, while another process holds the lock.
    @event.listens_for(services.db.engine, "connect")
    def _no_wait(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    services.db.engine.dispose()
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        response = client.post("/api/customers", json={"email": "busy@example.com"}, headers=auth)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert (
        client.post("/api/customers", json={"email": "busy@example.com"}, headers=auth).status_code
        == 201
    )
