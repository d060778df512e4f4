"""What pointbridge exposes besides the API: ``/metrics`` (concurrent scrapes, optional bearer
token) and the files it creates (the SQLite database and the generated key, owner-only)."""

from __future__ import annotations

import os
import stat
import sys
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

import pointbridge.web.metrics
from pointbridge.access.tokens import create_token
from pointbridge.delivery.admin import outbox_status
from pointbridge.services import Services
from pointbridge.settings import Settings
from pointbridge.storage.db import Database
from pointbridge.storage.secrets import KEY_FILE
from pointbridge.testing import FakeServer
from pointbridge.web import create_app
from pointbridge.web.cli import cli

SCRAPES = 8
METRICS_TOKEN = "scrape-me-please"


def test_concurrent_scrapes_all_succeed(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each scrape waits inside its outbox read until every scrape is there: they overlap for
    # certain, whatever the machine's speed.
    together = threading.Barrier(SCRAPES, timeout=60)

    def overlapping(db: Database) -> Any:
        together.wait()
        return outbox_status(db)

    monkeypatch.setattr(pointbridge.web.metrics, "outbox_status", overlapping)
    with FakeServer(app) as server, ThreadPoolExecutor(SCRAPES) as pool:
        responses = list(
            pool.map(lambda _: requests.get(f"{server.url}/metrics", timeout=120), range(SCRAPES))
        )

    assert [r.status_code for r in responses] == [200] * SCRAPES
    for response in responses:
        assert "pointbridge_outbox_rows" in response.text
        assert "pointbridge_delivered_total" in response.text


def test_metrics_are_open_without_a_metrics_token(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"Basic {METRICS_TOKEN}", f"Bearer {METRICS_TOKEN}x", "Bearer é"],
)
def test_metrics_refuse_a_scrape_without_the_metrics_token(
    client: FlaskClient, services: Services, authorization: str | None
) -> None:
    services.settings.metrics_token = METRICS_TOKEN
    headers = {"Authorization": authorization} if authorization else {}

    response = client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response.json["code"] == "unauthorized"
    assert "POINTBRIDGE_METRICS_TOKEN" in response.json["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_metrics_token_comes_from_the_environment(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POINTBRIDGE_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("POINTBRIDGE_DATABASE_URL", database_url)
    monkeypatch.setenv("POINTBRIDGE_METRICS_TOKEN", METRICS_TOKEN)
    app = create_app()
    try:
        client = app.test_client()
        assert client.get("/metrics").status_code == 401
        allowed = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert allowed.status_code == 200
        assert "pointbridge_outbox_rows" in allowed.text
    finally:
        app.extensions["pointbridge"].db.dispose()


def test_an_empty_metrics_token_leaves_metrics_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POINTBRIDGE_METRICS_TOKEN", "")
    assert Settings.from_env().metrics_token is None


class ModeWatch:
    """The modes a set of files had at every moment Python could observe: each audited event
    (every open, chmod, connect, ...) while watching. A file created world-readable and
    tightened afterwards is caught in between."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.seen: set[tuple[str, int]] = set()
        self._busy = False
        sys.addaudithook(self._hook)

    def _hook(self, _event: str, _args: Any) -> None:
        if self._busy or not self.paths:
            return
        self._busy = True
        try:
            for path in self.paths:
                if path.exists():
                    self.seen.add((path.name, stat.S_IMODE(path.stat().st_mode)))
        finally:
            self._busy = False


# Audit hooks cannot be removed: one for the whole test process, idle unless watching.
_WATCH = ModeWatch()


@pytest.fixture
def watch() -> Iterator[ModeWatch]:
    _WATCH.seen.clear()
    try:
        yield _WATCH
    finally:
        _WATCH.paths = []


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common 022: files are world-readable unless created otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_fresh_instance_keeps_its_database_and_key_to_the_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, watch: ModeWatch, usual_umask: None
) -> None:
    instance = tmp_path / "instance"
    database = instance / "pointbridge.sqlite3"
    for name in ("POINTBRIDGE_SECRET_KEY", "POINTBRIDGE_DATABASE_URL", "POINTBRIDGE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POINTBRIDGE_INSTANCE", str(instance))
    watch.paths = [instance / KEY_FILE, database, Path(f"{database}-wal"), Path(f"{database}-shm")]

    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    db = Database(f"sqlite:///{database}")
    try:
        with db.transaction() as session:  # a write, with its -wal and -shm in place
            create_token(session, "shop")
        files = {path.name: stat.S_IMODE(path.stat().st_mode) for path in watch.paths}
    finally:
        db.dispose()

    assert files == dict.fromkeys((path.name for path in watch.paths), 0o600)
    assert {mode for _, mode in watch.seen} == {0o600}
    assert {name for name, _ in watch.seen} == set(files)


def test_files_with_customers_pins_are_created_owner_only(
    app: Flask, services: Services, tmp_path: Path
) -> None:
    previous = os.umask(0o022)
    try:
        dry_run = tmp_path / "dry-run.jsonl"
        with services.db.transaction() as session:
            services.integrations.add(session, "dry", "jsonl", {"path": str(dry_run)})
            customer = services.loyalty.create_customer(session, {"email": "jana@example.com"})
            services.loyalty.set_pin(session, customer, "4321")
        services.integrations.install(services.db, "dry")
        services.worker().drain()
        csv_file = tmp_path / "export.csv"
        result = app.test_cli_runner().invoke(cli, ["export", "dry", "--csv", str(csv_file)])
    finally:
        os.umask(previous)

    assert result.exit_code == 0, result.output
    assert "4321" in dry_run.read_text() and "4321" in csv_file.read_text()
    assert stat.S_IMODE(dry_run.stat().st_mode) == 0o600
    assert stat.S_IMODE(csv_file.stat().st_mode) == 0o600


def test_a_csv_export_to_a_dash_goes_to_stdout(
    app: Flask, services: Services, tmp_path: Path
) -> None:
    with services.db.transaction() as session:
        services.integrations.add(session, "dry", "jsonl", {"path": str(tmp_path / "o.jsonl")})
        services.loyalty.create_customer(session, {"email": "jana@example.com"})
    services.integrations.install(services.db, "dry")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # click deprecates what it may drop in a release
        result = app.test_cli_runner().invoke(cli, ["export", "dry", "--csv", "-"])

    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()[:2]
    assert header.startswith("email,") and row.startswith("jana@example.com,")
