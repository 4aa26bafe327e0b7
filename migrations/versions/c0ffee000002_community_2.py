"""community: reports, notification preferences

Revision ID: c0ffee000002
Revises: c0ffee000001
Create Date: 2026-11-23 18:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c0ffee000002'
down_revision = 'c0ffee000001'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
