"""pytest fixtures for pointbridge's tests and any plugin's: the databases to run on.

Installed with pointbridge as a pytest plugin (entry point ``pytest11``), so a platform
plugin's own test suite gets them without copying a conftest:

- ``database_url``: a test that takes it runs twice, on a fresh SQLite file and on the real
  PostgreSQL server (``POINTBRIDGE_TEST_POSTGRES_URL``, default the local one), both migrated.
  Where no server answers, or ``pytest-postgresql`` / ``psycopg`` are not installed (the
  ``pointbridge[testing]`` extra brings them), the PostgreSQL run skips with a message, unless
  ``CI`` is set.
  Select one side with ``-m postgres`` or ``-m "not postgres"``.
- ``postgres_url``: the run's own PostgreSQL database (created fresh, dropped at the end).

What plugins keep per integration (``integration.state``) is forgotten after every test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pointbridge.kit import state
from pointbridge.storage.migrate import upgrade
from pointbridge.testing.databases import fresh_postgres_database, truncate_all


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: runs against the real PostgreSQL server")


@pytest.fixture(autouse=True)
def _forget_integration_state() -> Iterator[None]:
    # Two tests may give their integrations the same id and settings (the contract suite's).
    yield
    state.forget()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        upgrade(url)
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs the test once on SQLite and once on PostgreSQL, each database empty."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'pointbridge.sqlite3'}"
        upgrade(url)
        return url
    url = request.getfixturevalue("postgres_url")
    truncate_all(url)
    return url
