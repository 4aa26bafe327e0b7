"""issue 15 part B: the pledge as a composition (reward, add-on lines, shipping, bonus, country)

Revision ID: f15b00000001
Revises: f15a00000001
Create Date: 2026-12-04 15:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'f15b00000001'
down_revision = 'f15a00000001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reward_amount', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('addons_amount', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('shipping_amount', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('bonus_amount', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('country', sa.String(length=2), nullable=True))

    # Existing pledges keep their amount as reward + bonus: the reward is the tier's minimum (never
    # more than the pledge), the rest is bonus; a pledge without a reward is all reward.
    op.execute("""
        UPDATE pledges SET reward_amount = CASE
            WHEN tier_id IS NULL THEN amount
            ELSE (SELECT CASE WHEN tiers.amount < pledges.amount THEN tiers.amount ELSE pledges.amount END
                  FROM tiers WHERE tiers.id = pledges.tier_id)
        END
    """)
    op.execute("UPDATE pledges SET bonus_amount = amount - reward_amount")

    op.create_table('pledge_addons',
    sa.Column('pledge_id', sa.Integer(), nullable=False),
    sa.Column('addon_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_amount', sa.BigInteger(), nullable=False),
    sa.Column('shipping_amount', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_pledge_addons_quantity_positive')),
    sa.ForeignKeyConstraint(['addon_id'], ['addons.id'], name=op.f('fk_pledge_addons_addon_id_addons')),
    sa.ForeignKeyConstraint(['pledge_id'], ['pledges.id'], name=op.f('fk_pledge_addons_pledge_id_pledges'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pledge_id', 'addon_id', name=op.f('pk_pledge_addons'))
    )
    with op.batch_alter_table('pledge_addons', schema=None) as batch_op:
        batch_op.create_index('ix_pledge_addons_addon_id', ['addon_id'], unique=False)


def downgrade():
    with op.batch_alter_table('pledge_addons', schema=None) as batch_op:
        batch_op.drop_index('ix_pledge_addons_addon_id')
    op.drop_table('pledge_addons')
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.drop_column('country')
        batch_op.drop_column('bonus_amount')
        batch_op.drop_column('shipping_amount')
        batch_op.drop_column('addons_amount')
        batch_op.drop_column('reward_amount')
