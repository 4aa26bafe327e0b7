"""issue 20: users.saved_version, moved by each campaign a member saves or removes: the key of their
saved list on their pledges page, read with the login session, so that a cached page need not read the list

Revision ID: f20b00000001
Revises: f20a00000001
Create Date: 2026-12-05 15:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f20b00000001'
down_revision = 'f20a00000001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('saved_version', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('saved_version')
