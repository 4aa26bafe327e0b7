"""issue 17: shipping addresses (one per pledge that ships; erased in place, the row stays)

Revision ID: f17a00000001
Revises: f16a00000001
Create Date: 2026-12-04 16:12:47.930623

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f17a00000001'
down_revision = 'f16a00000001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('shipping_addresses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pledge_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('line1', sa.String(length=200), nullable=False),
    sa.Column('line2', sa.String(length=200), nullable=False),
    sa.Column('city', sa.String(length=200), nullable=False),
    sa.Column('region', sa.String(length=200), nullable=False),
    sa.Column('postal_code', sa.String(length=200), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('delivered_at', sa.DateTime(), nullable=True),
    sa.Column('erased_at', sa.DateTime(), nullable=True),
    sa.Column('erased_reason', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['pledge_id'], ['pledges.id'], name=op.f('fk_shipping_addresses_pledge_id_pledges'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipping_addresses')),
    sa.UniqueConstraint('pledge_id', name=op.f('uq_shipping_addresses_pledge_id'))
    )
    with op.batch_alter_table('shipping_addresses', schema=None) as batch_op:
        batch_op.create_index('ix_shipping_addresses_delivered_at', ['delivered_at'], unique=False)



def downgrade():
    with op.batch_alter_table('shipping_addresses', schema=None) as batch_op:
        batch_op.drop_index('ix_shipping_addresses_delivered_at')

    op.drop_table('shipping_addresses')
