"""issue 19: the demo database's mark (demo commands refuse any database without it)

Revision ID: f19a00000001
Revises: f18a00000001
Create Date: 2026-12-04 18:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f19a00000001'
down_revision = 'f18a00000001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('demo_marks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seeded_at', sa.DateTime(), nullable=False),
    sa.Column('anchor_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_demo_marks'))
    )


def downgrade():
    op.drop_table('demo_marks')
