"""The migrations build the schema the models describe, and upgrading keeps what was queued."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, insert, inspect, text

from pointbridge.delivery.admin import outbox_status
from pointbridge.storage.db import Database
from pointbridge.storage.migrate import upgrade
from pointbridge.storage.models import Base, Customer, OutboxMessage


def test_the_migrations_build_the_tables_and_indexes_the_models_describe(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
            indexes = inspect(connection).get_indexes("outbox")
    finally:
        engine.dispose()
    # Alembic does not compare an index's WHERE clause: check the partial indexes by hand.
    where = {
        index["name"]: str(index["dialect_options"].get(f"{engine.dialect.name}_where"))
        for index in indexes
    }
    assert "'pending'" in where["ix_outbox_due"]
    assert "'pending'" in where["ix_outbox_customer"]
    assert "'dead'" in where["ix_outbox_dead"]


def test_rows_queued_before_the_partial_indexes_are_still_found_after_upgrading(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade(url, "0001")
    engine = create_engine(url)
    # The models' outbox and customer tables differ from revision 0001 in indexes only, so
    # they can write its rows; its integration table held the webhook token in clear.
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO integration (id, name, platform, settings, data, field_prefix,"
                " list_rewards, status, webhook_token, webhook_secret, created_at, updated_at)"
                " VALUES (1, 'shop', 'jsonl', '{}', '{}', 'ellity_', '{}', 'active', 'token',"
                " x'00', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            insert(Customer.__table__).values(id=1, email="jana@example.com", referral_code="R1")
        )
        for status, attempts in [("pending", 0), ("pending", 2), ("dead", 12), ("delivered", 1)]:
            connection.execute(
                insert(OutboxMessage.__table__).values(
                    integration_id=1,
                    customer_id=1,
                    kind="contact",
                    status=status,
                    attempts=attempts,
                )
            )
    engine.dispose()

    upgrade(url, secret_key=Fernet.generate_key())

    db = Database(url)
    try:
        (line,) = outbox_status(db)
    finally:
        db.dispose()
    assert (line.integration, line.pending, line.retrying, line.dead) == ("shop", 1, 1, 1)


def test_addresses_stored_decomposed_are_composed_unless_another_customer_has_that_form(
    database_url: str,
) -> None:
    from pointbridge.storage.migrate import downgrade

    composed, decomposed = "jan\u00e1k@example.cz", "jana\u0301k@example.cz"
    eva_composed, eva_decomposed = "\u00e9va@example.cz", "e\u0301va@example.cz"
    downgrade(database_url, "0012")
    engine = create_engine(database_url)
    customers = Customer.__table__
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(customers),
                [
                    {"id": 1, "email": decomposed, "referral_code": "R1"},
                    {"id": 2, "email": eva_composed, "referral_code": "R2"},
                    {"id": 3, "email": eva_decomposed, "referral_code": "R3"},
                    {"id": 4, "email": "plain@example.cz", "referral_code": "R4"},
                ],
            )
        upgrade(database_url)
        with engine.connect() as connection:
            stored = dict(
                connection.execute(
                    customers.select().with_only_columns(customers.c.id, customers.c.email)
                ).all()
            )
    finally:
        engine.dispose()
        upgrade(database_url)  # the PostgreSQL database is the next test's too
    # Eva twice is for an admin to merge: neither customer's points can move by themselves.
    assert stored == {1: composed, 2: eva_composed, 3: eva_decomposed, 4: "plain@example.cz"}
