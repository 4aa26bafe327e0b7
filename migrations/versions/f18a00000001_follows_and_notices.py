"""issue 18: saved campaigns, backer digests, mail preferences for reminders, new backers and moderation

Revision ID: f18a00000001
Revises: f17d00000001
Create Date: 2026-12-04 18:04:41.510409

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f18a00000001'
down_revision = 'f17d00000001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('backer_digests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.DateTime(), nullable=False),
    sa.Column('backers', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_backer_digests_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backer_digests'))
    )
    with op.batch_alter_table('backer_digests', schema=None) as batch_op:
        batch_op.create_index('uq_backer_digests_campaign_day', ['campaign_id', 'day'], unique=True)

    op.create_table('campaign_follows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('reminded_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_follows_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_campaign_follows_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_follows')),
    sa.UniqueConstraint('campaign_id', 'user_id', name='uq_campaign_follows_campaign_user')
    )
    with op.batch_alter_table('campaign_follows', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_follows_user_created', ['user_id', 'created_at'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_reminders', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('email_new_backers', sa.String(length=8), server_default='each', nullable=False))
        batch_op.add_column(sa.Column('email_moderation', sa.Boolean(), server_default=sa.true(), nullable=False))



def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('email_moderation')
        batch_op.drop_column('email_new_backers')
        batch_op.drop_column('email_reminders')

    with op.batch_alter_table('campaign_follows', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_follows_user_created')

    op.drop_table('campaign_follows')
    with op.batch_alter_table('backer_digests', schema=None) as batch_op:
        batch_op.drop_index('uq_backer_digests_campaign_day')

    op.drop_table('backer_digests')
