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
    # Notification preferences: existing members keep getting every email until they choose.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_updates', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('email_replies', sa.Boolean(), server_default=sa.true(), nullable=False))

    # List-Unsubscribe headers (RFC 8058) kept with each queued mail.
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('headers', sa.JSON(), nullable=True))

    op.create_table('campaign_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('reporter_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('resolved_by_id', sa.Integer(), nullable=True),
    sa.Column('resolution', sa.String(length=16), nullable=True),
    sa.Column('resolution_note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_reports_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reporter_id'], ['users.id'], name=op.f('fk_campaign_reports_reporter_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['users.id'], name=op.f('fk_campaign_reports_resolved_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_reports'))
    )
    with op.batch_alter_table('campaign_reports', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_reports_campaign_resolved', ['campaign_id', 'resolved_at'], unique=False)
        batch_op.create_index('ix_campaign_reports_open', ['resolved_at', 'campaign_id'], unique=False)
        # One open report per member and campaign (resolved ones are history).
        batch_op.create_index('uq_campaign_reports_open', ['campaign_id', 'reporter_id'], unique=True,
                              postgresql_where=sa.text('resolved_at IS NULL'), sqlite_where=sa.text('resolved_at IS NULL'))


def downgrade():
    with op.batch_alter_table('campaign_reports', schema=None) as batch_op:
        batch_op.drop_index('uq_campaign_reports_open')
        batch_op.drop_index('ix_campaign_reports_open')
        batch_op.drop_index('ix_campaign_reports_campaign_resolved')
    op.drop_table('campaign_reports')

    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_column('headers')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('email_replies')
        batch_op.drop_column('email_updates')
