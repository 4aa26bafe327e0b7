"""issue 19: a pledge keeps the id of the request that made or last changed it (the worker logs it)

Revision ID: f19d00000001
Revises: f19a00000001
Create Date: 2026-12-04 21:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f19d00000001'
down_revision = 'f19a00000001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_id', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.drop_column('request_id')
