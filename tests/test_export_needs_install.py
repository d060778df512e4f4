"""An export goes to an installed integration: one never installed (its fields not on the
platform yet) is refused, over the command line, the management API and the console, with
the install to run first, and nothing is queued."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from pointbridge.access.users import create_user
from pointbridge.services import Services
from pointbridge.storage.models import ExportJob
from pointbridge.web.cli import cli

INSTALL_FIRST = (
    "shop was never installed: install it first (`pointbridge integrations install shop`"
)


@pytest.fixture
def saved(app: Flask, tmp_path: Path) -> None:
    """An integration added with --no-install: saved, never installed."""
    args = ["integrations", "add", "shop", "--plugin", "jsonl", "--set", f"path={tmp_path}/o"]
    added = app.test_cli_runner().invoke(cli, [*args, "--no-install"])
    assert added.exit_code == 0, added.output


def _exports(services: Services) -> int:
    with services.db.read() as session:
        return session.scalar(select(func.count()).select_from(ExportJob))


@pytest.mark.parametrize("restart", [[], ["--restart"]])
def test_the_command_line_says_to_install_first(
    app: Flask, services: Services, saved: None, restart: list[str]
) -> None:
    refused = app.test_cli_runner().invoke(cli, ["export", "shop", *restart])
    assert refused.exit_code == 1
    assert isinstance(refused.exception, SystemExit)  # one line, no traceback
    assert INSTALL_FIRST in refused.output
    assert _exports(services) == 0

    installed = app.test_cli_runner().invoke(cli, ["integrations", "install", "shop"])
    assert installed.exit_code == 0, installed.output
    exported = app.test_cli_runner().invoke(cli, ["export", "shop", *restart])
    assert exported.exit_code == 0, exported.output
    assert "finished" in exported.output


@pytest.mark.parametrize("body", [{}, {"restart": True}])
def test_the_api_says_to_install_first(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    services: Services,
    saved: None,
    body: dict[str, bool],
) -> None:
    refused = client.post("/api/integrations/shop/export", json=body, headers=auth)
    assert refused.status_code == 409, refused.json
    assert INSTALL_FIRST in refused.json["message"]
    assert "POST /api/integrations/shop/install" in refused.json["message"]
    assert _exports(services) == 0

    assert client.post("/api/integrations/shop/install", json={}, headers=auth).status_code == 200
    queued = client.post("/api/integrations/shop/export", json=body, headers=auth)
    assert queued.status_code == 202, queued.json


def test_the_console_says_to_install_first(
    client: FlaskClient, services: Services, saved: None
) -> None:
    create_user(services.db, "admin@example.com", "correct horse battery staple")

    def csrf(page: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found is not None
        return found.group(1)

    login = client.get("/admin/login").get_data(as_text=True)
    form = {"email": "admin@example.com", "password": "correct horse battery staple"}
    assert client.post("/admin/login", data={**form, "csrf_token": csrf(login)}).status_code == 302
    page = client.get("/admin/integrations/shop/export").get_data(as_text=True)
    answer = client.post(
        "/admin/integrations/shop/export",
        data={"action": "start", "csrf_token": csrf(page)},
        follow_redirects=True,
    )
    assert answer.status_code == 200
    assert INSTALL_FIRST in html.unescape(answer.get_data(as_text=True))
    assert _exports(services) == 0
