"""Host test fixtures: services on SQLite and on a real PostgreSQL, an app, an API client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from pointbridge.access.tokens import create_token
from pointbridge.plugins import PluginHost
from pointbridge.services import Services
from pointbridge.settings import Settings
from pointbridge.storage.migrate import upgrade
from pointbridge.web import create_app

os.environ.setdefault("POINTBRIDGE_SECRET_KEY", "tests-only-secret-key")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'pointbridge.sqlite3'}"
    upgrade(url)
    return url


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    return Settings(
        instance_path=tmp_path / "instance",
        database_url=database_url,
        secret_key="tests-only-secret-key",
        public_url="http://pointbridge.test",
        **overrides,
    )


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def plugin_host() -> PluginHost:
    return PluginHost()


@pytest.fixture
def services(settings: Settings, plugin_host: PluginHost) -> Iterator[Services]:
    built = Services.build(settings, plugin_host)
    yield built
    built.db.dispose()


@pytest.fixture
def app(services: Services) -> Flask:
    return create_app(services=services)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def token(services: Services) -> str:
    with services.db.transaction() as session:
        return create_token(session, "tests")


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def sql_statements(services: Services) -> Iterator[list[str]]:
    """Every SQL statement the services send from now on; clear it to start counting again."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(services.db.engine, "before_cursor_execute", record)
    yield seen
    event.remove(services.db.engine, "before_cursor_execute", record)
