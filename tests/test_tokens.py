"""API tokens: reads that write nothing, ``last_used_at`` at most once a minute, and the
``tokens list`` / ``tokens revoke`` commands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from pointbridge.services import Services
from pointbridge.storage.models import ApiToken
from pointbridge.web.cli import cli

START = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|BEGIN IMMEDIATE)\b", re.IGNORECASE)


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(START, tick=False) as frozen:
        yield frozen


def last_used(services: Services) -> datetime | None:
    with services.db.read() as session:
        return session.scalar(select(ApiToken.last_used_at))


def test_an_authenticated_get_writes_nothing(
    client: FlaskClient, auth: dict[str, str], clock: Any, sql_statements: list[str]
) -> None:
    assert client.get("/api/customers", headers=auth).status_code == 200  # records the use
    clock.shift(timedelta(seconds=30))
    sql_statements.clear()
    assert client.get("/api/customers", headers=auth).status_code == 200
    assert any(s.lstrip().upper().startswith("SELECT") for s in sql_statements)
    assert [s for s in sql_statements if WRITES.match(s)] == []


def test_last_used_is_recorded_at_most_once_a_minute(
    client: FlaskClient, auth: dict[str, str], services: Services, clock: Any
) -> None:
    assert last_used(services) is None
    client.get("/api/customers", headers=auth)
    assert last_used(services) == START

    clock.shift(timedelta(seconds=59))
    client.get("/api/customers", headers=auth)
    assert last_used(services) == START

    clock.shift(timedelta(seconds=2))
    client.get("/api/customers", headers=auth)
    assert last_used(services) == START + timedelta(seconds=61)


def run(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(cli, ["tokens", *args])


def test_tokens_list_shows_each_token_but_never_the_token_itself(
    clock: Any, app: Flask, client: FlaskClient, token: str, auth: dict[str, str]
) -> None:
    other = run(app, "create", "--name", "warehouse").output.strip()
    clock.shift(timedelta(minutes=5))
    client.get("/api/customers", headers=auth)

    listed = run(app, "list")

    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert len(lines) == 2
    assert re.match(
        rf"\s*\d+\s+tests\s+{re.escape(token[:7])}…\s+created 2025-03-10 12:00 UTC\s+"
        r"last used 2025-03-10 12:05 UTC$",
        lines[0],
    )
    assert re.match(rf"\s*\d+\s+warehouse\s+{re.escape(other[:7])}….*last used never$", lines[1])
    assert token not in listed.output and other not in listed.output


def test_tokens_list_says_when_there_are_none(app: Flask) -> None:
    listed = run(app, "list")
    assert listed.exit_code == 0
    assert listed.output == "no API tokens yet: pointbridge tokens create --name NAME\n"


def test_a_revoked_token_is_refused_at_once(
    app: Flask, client: FlaskClient, token: str, auth: dict[str, str], services: Services
) -> None:
    assert client.get("/api/customers", headers=auth).status_code == 200
    with services.db.read() as session:
        token_id = session.scalar(select(ApiToken.id))

    revoked = run(app, "revoke", str(token_id))

    assert revoked.exit_code == 0
    assert revoked.output == f"revoked token {token_id} (tests, {token[:7]}…)\n"
    refused = client.get("/api/customers", headers=auth)
    assert refused.status_code == 401
    assert refused.json["message"] == "The API token is not valid."
    assert "no API tokens yet" in run(app, "list").output


def test_revoking_an_unknown_id_fails_in_one_line(app: Flask, token: str) -> None:
    revoked = run(app, "revoke", "999")

    assert revoked.exit_code != 0
    assert revoked.output == ("Error: no API token with id 999 (see pointbridge tokens list)\n")
    assert len(run(app, "list").output.splitlines()) == 1
