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
    op.create_table('campaign_updates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('backers_only', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('edited_at', sa.DateTime(), nullable=True),
    sa.Column('fanout_after_pledge_id', sa.Integer(), server_default='0', nullable=False),
    sa.Column('fanned_out_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_campaign_updates_author_id_users')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_updates_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_updates'))
    )
    with op.batch_alter_table('campaign_updates', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_updates_campaign_created', ['campaign_id', 'created_at'], unique=False)
        batch_op.create_index('ix_campaign_updates_fanned_out_at', ['fanned_out_at'], unique=False)

    op.create_table('comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('hidden_at', sa.DateTime(), nullable=True),
    sa.Column('hidden_by_id', sa.Integer(), nullable=True),
    sa.Column('hidden_note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_comments_author_id_users')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_comments_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['hidden_by_id'], ['users.id'], name=op.f('fk_comments_hidden_by_id_users')),
    sa.ForeignKeyConstraint(['parent_id'], ['comments.id'], name=op.f('fk_comments_parent_id_comments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comments'))
    )
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.create_index('ix_comments_campaign_parent_id', ['campaign_id', 'parent_id', 'id'], unique=False)

    op.create_table('faq_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('question', sa.String(length=300), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_faq_entries_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_faq_entries'))
    )
    with op.batch_alter_table('faq_entries', schema=None) as batch_op:
        batch_op.create_index('ix_faq_entries_campaign_position', ['campaign_id', 'position'], unique=False)

    op.create_table('campaign_questions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('asker_id', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('answered_at', sa.DateTime(), nullable=True),
    sa.Column('faq_entry_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['asker_id'], ['users.id'], name=op.f('fk_campaign_questions_asker_id_users')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_questions_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['faq_entry_id'], ['faq_entries.id'], name=op.f('fk_campaign_questions_faq_entry_id_faq_entries'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_questions'))
    )
    with op.batch_alter_table('campaign_questions', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_questions_campaign_created', ['campaign_id', 'created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('campaign_questions', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_questions_campaign_created')
    op.drop_table('campaign_questions')
    with op.batch_alter_table('faq_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_faq_entries_campaign_position')
    op.drop_table('faq_entries')
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_index('ix_comments_campaign_parent_id')
    op.drop_table('comments')
    with op.batch_alter_table('campaign_updates', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_updates_fanned_out_at')
        batch_op.drop_index('ix_campaign_updates_campaign_created')
    op.drop_table('campaign_updates')
