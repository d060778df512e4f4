"""stored e-mail addresses in Unicode NFC, the form they are now looked up in

Revision ID: 0013
Revises: 0012

An "á" can be one code point or an "a" and a combining accent; both render the same, and
platforms and browsers send either. Addresses are now stored and looked up in NFC (composed),
so one customer is not two. Addresses stored before in another form are rewritten, unless
the NFC form already belongs to someone else: those pairs are left as they are and named in
the log, for an admin to merge (neither customer's points can be moved without them).
"""

import logging
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

# Only addresses with a character outside printable ASCII can change: ASCII is NFC already.
NOT_ASCII = {"sqlite": "email GLOB '*[^ -~]*'", "postgresql": "email ~ '[^ -~]'"}


def _to_nfc(connection: sa.Connection, table: str) -> None:
    rows = connection.execute(
        sa.text(f"SELECT id, email FROM {table} WHERE {NOT_ASCII[connection.dialect.name]}")
    ).all()
    taken = {email for _, email in rows}
    for row_id, email in rows:
        composed = unicodedata.normalize("NFC", email)
        if composed == email:
            continue
        clash = (
            composed in taken
            or connection.execute(
                sa.text(f"SELECT 1 FROM {table} WHERE email = :email"), {"email": composed}
            ).first()
        )
        if clash:
            log.warning(
                "%s %d: its e-mail is another's in composed form; left as it is to merge by hand",
                table,
                row_id,
            )
            continue
        connection.execute(
            sa.text(f"UPDATE {table} SET email = :email WHERE id = :id"),
            {"email": composed, "id": row_id},
        )
        taken.add(composed)


def upgrade() -> None:
    connection = op.get_bind()
    for table in ("customer", "admin_user"):
        _to_nfc(connection, table)


def downgrade() -> None:
    # Composed addresses are what every earlier revision stored for composed input.
    pass
