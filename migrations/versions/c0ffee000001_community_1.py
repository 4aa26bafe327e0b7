"""community: updates, comments, FAQ, questions

Revision ID: c0ffee000001
Revises: 0e7341acdd49
Create Date: 2026-11-23 18:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c0ffee000001'
down_revision = '0e7341acdd49'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
