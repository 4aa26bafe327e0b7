"""issue 20: each charge attempt has a random token, part of its idempotency key and its PaymentIntent's
metadata, so that no attempt of another database (or of a test whose clock stands still) sends the same key

Revision ID: f20a00000001
Revises: f19d00000001
Create Date: 2026-12-04 23:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f20a00000001'
down_revision = 'f19d00000001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('charge_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token', sa.String(length=32), nullable=True))


def downgrade():
    with op.batch_alter_table('charge_attempts', schema=None) as batch_op:
        batch_op.drop_column('token')
