"""An integration's name is a segment of URLs and a word in commands: the command line, the
REST API (and the console, through the API's schema) refuse one that cannot be, naming the
pattern, and add nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from pointbridge.host_options import NAME_PATTERN
from pointbridge.services import Services
from pointbridge.storage.models import IntegrationRow
from pointbridge.web.cli import cli

REFUSED = ["..", ".", "a/b", "", "   ", " shop", "shop\n", "a b", ".hidden", "12", "x" * 101]


def _integrations(services: Services) -> int:
    with services.db.read() as session:
        return session.scalar(select(func.count()).select_from(IntegrationRow))


@pytest.mark.parametrize("name", REFUSED)
def test_the_command_line_refuses_a_name_that_cannot_be_one(
    app: Flask, services: Services, tmp_path: Path, name: str
) -> None:
    args = ["integrations", "add", name, "--plugin", "jsonl", "--set", f"path={tmp_path}/o.jsonl"]
    result = app.test_cli_runner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # one line, no traceback
    assert NAME_PATTERN in result.output and "not digits only" in result.output
    assert _integrations(services) == 0


@pytest.mark.parametrize("name", REFUSED)
def test_the_api_refuses_a_name_that_cannot_be_one(
    client: FlaskClient, auth: dict[str, str], services: Services, tmp_path: Path, name: str
) -> None:
    body = {"name": name, "platform": "jsonl", "settings": {"path": f"{tmp_path}/o.jsonl"}}
    answer = client.post("/api/integrations", json=body, headers=auth)
    assert answer.status_code == 422, answer.json
    (message,) = answer.json["errors"]["name"]
    # An empty or too long name is refused for its length first.
    assert NAME_PATTERN in message if 0 < len(name) <= 100 else "100" in message
    assert _integrations(services) == 0


@pytest.mark.parametrize("name", ["newsletter", "shop.cz", "News_2-b", "7eleven", "x" * 100])
def test_a_name_of_letters_digits_dots_dashes_and_underscores_is_taken(
    app: Flask, client: FlaskClient, auth: dict[str, str], tmp_path: Path, name: str
) -> None:
    args = ["integrations", "add", name, "--plugin", "jsonl", "--set", f"path={tmp_path}/o.jsonl"]
    result = app.test_cli_runner().invoke(cli, [*args, "--no-install"])
    assert result.exit_code == 0, result.output
    shown = client.get(f"/api/integrations/{name}", headers=auth)
    assert shown.status_code == 200 and shown.json["name"] == name
