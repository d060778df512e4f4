"""Test databases: SQLite files, and a fresh database on a real PostgreSQL server per run.

The server comes from ``POINTBRIDGE_TEST_POSTGRES_URL`` (default the local one,
``postgresql://postgres@127.0.0.1:5432/test``). Where no server answers, PostgreSQL tests skip
with a message, unless ``CI`` is set: then they fail, so CI cannot pass without them. The same
goes for a plain install without ``pytest-postgresql`` and ``psycopg`` (``pointbridge[testing]``
brings them).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from pytest_postgresql.janitor import DatabaseJanitor

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_server_url() -> str:
    return os.environ.get("POINTBRIDGE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create a uniquely named database, yield its SQLAlchemy URL, drop it afterwards."""
    janitor_class = _postgres_tools()
    server = make_url(postgres_server_url())
    name = f"pointbridge_test_{uuid.uuid4().hex[:12]}"
    janitor = janitor_class(
        user=server.username or "postgres",
        host=server.host or "127.0.0.1",
        port=server.port or 5432,
        dbname=name,
        maintenance_dbname=server.database or "postgres",
        password=server.password,
        connection_timeout=5,
    )
    try:
        janitor.init()
    except Exception as exc:  # the server is not there: psycopg and timeout errors alike
        _unavailable(f"no PostgreSQL server answers at {server.render_as_string()}: {exc}")
    try:
        yield server.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        janitor.drop()


def _postgres_tools() -> type[DatabaseJanitor]:
    try:
        import psycopg  # noqa: F401  (the driver of SQLAlchemy's postgresql+psycopg URLs)
        from pytest_postgresql.janitor import DatabaseJanitor
    except ImportError as exc:
        _unavailable(
            f"PostgreSQL tests need {(exc.name or '').partition('.')[0]}, which is not installed: "
            "pip install 'pointbridge[testing]'"
        )
    return DatabaseJanitor


def _unavailable(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so PostgreSQL tests must run)")
    pytest.skip(message)


def truncate_all(url: str) -> None:
    """Empty every table (faster than a new database per test)."""
    from pointbridge.storage.models import Base

    engine = create_engine(url)
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))
    engine.dispose()
