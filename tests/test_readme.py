"""The README's walk-through, run as written against a real `pointbridge run` server."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).parents[1]


def walkthrough() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Walk-through", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_walkthrough_works_as_written(tmp_path: Path) -> None:
    # The walk-through runs at the repository root; a copy of that layout keeps its files, and
    # the instance is the user's data folder, here a fresh one (XDG_DATA_HOME).
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    pointbridge = str(Path(sys.executable).parent / "pointbridge")
    port = free_port()
    env = {
        **os.environ,
        "POINTBRIDGE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    env.pop("POINTBRIDGE_INSTANCE", None)
    env.pop("POINTBRIDGE_DATABASE_URL", None)
    subprocess.run(
        [pointbridge, "db", "upgrade"], cwd=tmp_path, env=env, check=True, capture_output=True
    )
    server = subprocess.Popen(
        [pointbridge, "run", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{port}/api/openapi.json", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        script = walkthrough().replace("127.0.0.1:5000", f"127.0.0.1:{port}")
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    lines = [
        json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"integration"')
    ]
    contacts = [line for line in lines if line["kind"] == "contact"]
    events = [line for line in lines if line["kind"] == "event"]
    assert contacts and contacts[-1]["points"] == 120
    assert contacts[-1]["email"] == "jana@example.com"
    assert [e["data"] for e in events] == [{"points": 120, "balance": 120, "reason": "order"}]
    # The id a platform would use to recognise a redelivery of this event.
    assert events[0]["uid"].startswith(f"{events[0]['id']}-")
