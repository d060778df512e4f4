"""integration: the webhook token stored as a SHA-256 hash and Fernet-encrypted, never in clear

Revision ID: 0004
Revises: 0003

Existing tokens keep working: the hash needs no key, but encrypting them needs the app's
secret key, which ``pointbridge db upgrade`` passes (``core.migrate.upgrade(secret_key=...)``).
The hash and encryption are spelt out here rather than imported, so this revision keeps
writing what it wrote whatever the app's code becomes.
"""

import hashlib

import sqlalchemy as sa
from alembic import context, op
from cryptography.fernet import Fernet

from pointbridge.storage.migrate import migration_secret_key

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

integration = sa.table(
    "integration",
    sa.column("id", sa.Integer),
    sa.column("webhook_token", sa.String),
    sa.column("webhook_token_hash", sa.String),
    sa.column("webhook_token_encrypted", sa.LargeBinary),
)


def _fernet(rows: int, needed_for: str) -> Fernet:
    return Fernet(migration_secret_key(context.config, f"{needed_for} of {rows} integration(s)"))


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(integration.c.id, integration.c.webhook_token)).all()
    # The key first: without one, stop before anything changed.
    fernet = _fernet(len(rows), "encrypt the webhook tokens") if rows else None
    with op.batch_alter_table("integration", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_token_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("webhook_token_encrypted", sa.LargeBinary(), nullable=True))
    if fernet is not None:
        for row_id, token in rows:
            connection.execute(
                integration.update()
                .where(integration.c.id == row_id)
                .values(
                    webhook_token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    webhook_token_encrypted=fernet.encrypt(token.encode()),
                )
            )
    with op.batch_alter_table("integration", schema=None) as batch_op:
        batch_op.alter_column("webhook_token_hash", nullable=False)
        batch_op.alter_column("webhook_token_encrypted", nullable=False)
        batch_op.create_unique_constraint(
            "uq_integration_webhook_token_hash", ["webhook_token_hash"]
        )
        batch_op.drop_column("webhook_token")


def downgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(integration.c.id, integration.c.webhook_token_encrypted)
    ).all()
    fernet = _fernet(len(rows), "decrypt the webhook tokens") if rows else None
    with op.batch_alter_table("integration", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_token", sa.String(length=64), nullable=True))
    if fernet is not None:
        for row_id, encrypted in rows:
            connection.execute(
                integration.update()
                .where(integration.c.id == row_id)
                .values(webhook_token=fernet.decrypt(encrypted).decode())
            )
    with op.batch_alter_table("integration", schema=None) as batch_op:
        batch_op.alter_column("webhook_token", nullable=False)
        batch_op.create_unique_constraint("integration_webhook_token_key", ["webhook_token"])
        batch_op.drop_constraint("uq_integration_webhook_token_hash", type_="unique")
        batch_op.drop_column("webhook_token_encrypted")
        batch_op.drop_column("webhook_token_hash")
