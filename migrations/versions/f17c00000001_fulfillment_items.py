"""issue 17: fulfillment items, their audit rows and problem threads; updates tagged as delivery news

Revision ID: f17c00000001
Revises: f17b00000001
Create Date: 2026-12-04 17:45:52.611367

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f17c00000001'
down_revision = 'f17b00000001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('fulfillment_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pledge_id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('item', sa.String(length=32), nullable=False),
    sa.Column('tier_id', sa.Integer(), nullable=True),
    sa.Column('addon_id', sa.Integer(), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('carrier', sa.String(length=100), nullable=False),
    sa.Column('tracking', sa.String(length=500), nullable=False),
    sa.Column('shipped_on', sa.Date(), nullable=True),
    sa.Column('shipped_at', sa.DateTime(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(), nullable=True),
    sa.Column('delivered_by', sa.String(length=16), nullable=True),
    sa.Column('problem', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['addon_id'], ['addons.id'], name=op.f('fk_fulfillment_items_addon_id_addons')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_fulfillment_items_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pledge_id'], ['pledges.id'], name=op.f('fk_fulfillment_items_pledge_id_pledges'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tier_id'], ['tiers.id'], name=op.f('fk_fulfillment_items_tier_id_tiers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fulfillment_items')),
    sa.UniqueConstraint('pledge_id', 'item', name=op.f('uq_fulfillment_items_pledge_id'))
    )
    with op.batch_alter_table('fulfillment_items', schema=None) as batch_op:
        batch_op.create_index('ix_fulfillment_items_campaign_state', ['campaign_id', 'state'], unique=False)
        batch_op.create_index('ix_fulfillment_items_shipped', ['state', 'shipped_at'], unique=False)

    op.create_table('fulfillment_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('from_state', sa.String(length=16), nullable=False),
    sa.Column('to_state', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_fulfillment_events_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['item_id'], ['fulfillment_items.id'], name=op.f('fk_fulfillment_events_item_id_fulfillment_items'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fulfillment_events'))
    )
    with op.batch_alter_table('fulfillment_events', schema=None) as batch_op:
        batch_op.create_index('ix_fulfillment_events_item_id', ['item_id'], unique=False)

    op.create_table('problem_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_problem_messages_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['item_id'], ['fulfillment_items.id'], name=op.f('fk_problem_messages_item_id_fulfillment_items'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_problem_messages'))
    )
    with op.batch_alter_table('problem_messages', schema=None) as batch_op:
        batch_op.create_index('ix_problem_messages_item_id', ['item_id'], unique=False)

    with op.batch_alter_table('campaign_updates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_news', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('campaign_updates', schema=None) as batch_op:
        batch_op.drop_column('delivery_news')
    with op.batch_alter_table('problem_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_problem_messages_item_id')

    op.drop_table('problem_messages')
    with op.batch_alter_table('fulfillment_events', schema=None) as batch_op:
        batch_op.drop_index('ix_fulfillment_events_item_id')

    op.drop_table('fulfillment_events')
    with op.batch_alter_table('fulfillment_items', schema=None) as batch_op:
        batch_op.drop_index('ix_fulfillment_items_shipped')
        batch_op.drop_index('ix_fulfillment_items_campaign_state')

    op.drop_table('fulfillment_items')
