"""PostgreSQL: an insert into the outbox wakes the workers by itself

Revision ID: 0014
Revises: 0013

Every transaction that queued outbox rows sent ``NOTIFY pointbridge_outbox`` as a statement of
its own: on the request path, one round trip in six of a points transaction. A statement-level
trigger sends the notification from within the INSERT (or COPY) instead. PostgreSQL still
delivers it only when, and if, the transaction commits, and once however many rows and
statements queued. SQLite has no notifications: nothing to do there.
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION pointbridge_outbox_wakes() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_notify('pointbridge_outbox', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER outbox_wakes_workers AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION pointbridge_outbox_wakes()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER outbox_wakes_workers ON outbox")
    op.execute("DROP FUNCTION pointbridge_outbox_wakes()")
