"""issue 17: the backer survey (surveys, questions and their targets, requests, answers)

Revision ID: f17b00000001
Revises: f17a00000001
Create Date: 2026-12-04 16:24:54.404231

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f17b00000001'
down_revision = 'f17a00000001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('surveys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('locked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_surveys_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_surveys')),
    sa.UniqueConstraint('campaign_id', name=op.f('uq_surveys_campaign_id'))
    )
    op.create_table('survey_questions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('prompt', sa.String(length=300), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['survey_id'], ['surveys.id'], name=op.f('fk_survey_questions_survey_id_surveys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_questions'))
    )
    with op.batch_alter_table('survey_questions', schema=None) as batch_op:
        batch_op.create_index('ix_survey_questions_survey_id', ['survey_id', 'position'], unique=False)

    op.create_table('survey_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pledge_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('choices', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['pledge_id'], ['pledges.id'], name=op.f('fk_survey_answers_pledge_id_pledges'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['question_id'], ['survey_questions.id'], name=op.f('fk_survey_answers_question_id_survey_questions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_answers')),
    sa.UniqueConstraint('pledge_id', 'question_id', name=op.f('uq_survey_answers_pledge_id'))
    )
    with op.batch_alter_table('survey_answers', schema=None) as batch_op:
        batch_op.create_index('ix_survey_answers_question_id', ['question_id'], unique=False)

    op.create_table('survey_question_addons',
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('addon_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['addon_id'], ['addons.id'], name=op.f('fk_survey_question_addons_addon_id_addons'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['question_id'], ['survey_questions.id'], name=op.f('fk_survey_question_addons_question_id_survey_questions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('question_id', 'addon_id', name=op.f('pk_survey_question_addons'))
    )
    op.create_table('survey_question_tiers',
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('tier_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['question_id'], ['survey_questions.id'], name=op.f('fk_survey_question_tiers_question_id_survey_questions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tier_id'], ['tiers.id'], name=op.f('fk_survey_question_tiers_tier_id_tiers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('question_id', 'tier_id', name=op.f('pk_survey_question_tiers'))
    )
    op.create_table('survey_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('pledge_id', sa.Integer(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=False),
    sa.Column('answered_at', sa.DateTime(), nullable=True),
    sa.Column('last_reminded_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['pledge_id'], ['pledges.id'], name=op.f('fk_survey_requests_pledge_id_pledges'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['survey_id'], ['surveys.id'], name=op.f('fk_survey_requests_survey_id_surveys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_requests')),
    sa.UniqueConstraint('pledge_id', name=op.f('uq_survey_requests_pledge_id'))
    )
    with op.batch_alter_table('survey_requests', schema=None) as batch_op:
        batch_op.create_index('ix_survey_requests_due', ['answered_at', 'last_reminded_at'], unique=False)



def downgrade():
    with op.batch_alter_table('survey_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_survey_requests_due')

    op.drop_table('survey_requests')
    op.drop_table('survey_question_tiers')
    op.drop_table('survey_question_addons')
    with op.batch_alter_table('survey_answers', schema=None) as batch_op:
        batch_op.drop_index('ix_survey_answers_question_id')

    op.drop_table('survey_answers')
    with op.batch_alter_table('survey_questions', schema=None) as batch_op:
        batch_op.drop_index('ix_survey_questions_survey_id')

    op.drop_table('survey_questions')
    op.drop_table('surveys')
