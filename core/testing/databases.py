"""Test databases: SQLite files, and a fresh database on a real PostgreSQL server per run.

The server comes from ``POINTBRIDGE_TEST_POSTGRES_URL`` (default the local one,
``postgresql://postgres@127.0.0.1:5432/test``). Where no server answers, PostgreSQL tests skip
with a message, unless ``CI`` is set: then they fail, so CI cannot pass without them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_server_url() -> str:
    return os.environ.get("POINTBRIDGE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create a uniquely named database, yield its SQLAlchemy URL, drop it afterwards."""
    from pytest_postgresql.janitor import DatabaseJanitor

    server = make_url(postgres_server_url())
    name = f"pointbridge_test_{uuid.uuid4().hex[:12]}"
    janitor = DatabaseJanitor(
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
        message = f"no PostgreSQL server answers at {server.render_as_string()}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set, so PostgreSQL tests must run)")
        pytest.skip(message)
    try:
        yield server.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        janitor.drop()


def truncate_all(url: str) -> None:
    """Empty every table (faster than a new database per test)."""
    from pointbridge.models import Base

    engine = create_engine(url)
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))
    engine.dispose()
