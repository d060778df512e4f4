"""Alembic environment: the URL comes from the caller (core.migrate), never from a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from pointbridge.storage.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
connection = config.attributes.get("connection")


def run(connection_: object) -> None:
    context.configure(
        connection=connection_,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite needs table copies to alter columns
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    engine = create_engine(url)
    with engine.connect() as conn:
        run(conn)
    engine.dispose()
