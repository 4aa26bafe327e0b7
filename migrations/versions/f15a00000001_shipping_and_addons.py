"""issue 15 part A: shipping destinations per tier, and add-ons

Revision ID: f15a00000001
Revises: d14a00000001
Create Date: 2026-12-04 12:34:12

"""
from alembic import op
import sqlalchemy as sa


revision = 'f15a00000001'
down_revision = 'd14a00000001'
branch_labels = None
depends_on = None


def upgrade():
    # Existing tiers become "no shipping": their free-text shipping note stays what it was, a note.
    with op.batch_alter_table('tiers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ships', sa.Boolean(), server_default=sa.false(), nullable=False))

    op.create_table('addons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=80), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('quantity_limit', sa.Integer(), nullable=True),
    sa.Column('claimed', sa.Integer(), nullable=False),
    sa.Column('ships', sa.Boolean(), nullable=False),
    sa.Column('shipping_per', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint('amount > 0', name=op.f('ck_addons_amount_positive')),
    sa.CheckConstraint('claimed >= 0', name=op.f('ck_addons_claimed_not_negative')),
    sa.CheckConstraint('quantity_limit IS NULL OR quantity_limit > 0', name=op.f('ck_addons_limit_positive')),
    sa.CheckConstraint('quantity_limit IS NULL OR claimed <= quantity_limit', name=op.f('ck_addons_claimed_within_limit')),
    sa.CheckConstraint("shipping_per IN ('unit', 'pledge')", name=op.f('ck_addons_shipping_per_known')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_addons_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_addons'))
    )
    with op.batch_alter_table('addons', schema=None) as batch_op:
        batch_op.create_index('ix_addons_campaign_id', ['campaign_id'], unique=False)

    # No row for an add-on: offered with every tier.
    op.create_table('addon_tiers',
    sa.Column('addon_id', sa.Integer(), nullable=False),
    sa.Column('tier_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['addon_id'], ['addons.id'], name=op.f('fk_addon_tiers_addon_id_addons'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tier_id'], ['tiers.id'], name=op.f('fk_addon_tiers_tier_id_tiers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('addon_id', 'tier_id', name=op.f('pk_addon_tiers'))
    )

    # A destination belongs to one tier or one add-on, once per country (the unique indexes also
    # serve the lookups by owner).
    op.create_table('shipping_destinations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tier_id', sa.Integer(), nullable=True),
    sa.Column('addon_id', sa.Integer(), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('cost', sa.Integer(), nullable=False),
    sa.CheckConstraint('cost >= 0', name=op.f('ck_shipping_destinations_cost_not_negative')),
    sa.CheckConstraint('(tier_id IS NULL) <> (addon_id IS NULL)', name=op.f('ck_shipping_destinations_one_owner')),
    sa.ForeignKeyConstraint(['tier_id'], ['tiers.id'], name=op.f('fk_shipping_destinations_tier_id_tiers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['addon_id'], ['addons.id'], name=op.f('fk_shipping_destinations_addon_id_addons'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipping_destinations')),
    sa.UniqueConstraint('tier_id', 'country', name=op.f('uq_shipping_destinations_tier_id')),
    sa.UniqueConstraint('addon_id', 'country', name=op.f('uq_shipping_destinations_addon_id'))
    )


def downgrade():
    op.drop_table('shipping_destinations')
    op.drop_table('addon_tiers')
    with op.batch_alter_table('addons', schema=None) as batch_op:
        batch_op.drop_index('ix_addons_campaign_id')
    op.drop_table('addons')

    with op.batch_alter_table('tiers', schema=None) as batch_op:
        batch_op.drop_column('ships')
