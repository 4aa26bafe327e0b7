"""accounts: failed logins per account and the lock they lead to (issue 14)

Revision ID: d14a00000001
Revises: c0ffee000002
Create Date: 2026-12-04 12:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd14a00000001'
down_revision = 'c0ffee000002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('login_failures', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('login_failures_since', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('locked_until')
        batch_op.drop_column('login_failures_since')
        batch_op.drop_column('login_failures')
