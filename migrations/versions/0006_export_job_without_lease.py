"""export_job: no lease of its own

Revision ID: 0006
Revises: 0005

The delivery worker sends an export's pages under the integration's sending lease; the job's
own lease, held by the separate export runner that is gone, has no reader left.
"""

import sqlalchemy as sa
from alembic import op

from pointbridge.storage.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("export_job", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_owner")


def downgrade() -> None:
    with op.batch_alter_table("export_job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("lease_until", UTCDateTime(timezone=True), nullable=True))
