"""payments

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 23:26:44.821309

Payments: the stage a matter waits to move to until its blocking invoice is paid, and when the
provider's checkout behind a payment link closes (a link lives 7 days, a Stripe checkout 24 hours).
"""
from alembic import op
import sqlalchemy as sa
import services.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('matters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('waiting_stage', sa.String(length=40), nullable=True))

    with op.batch_alter_table('payment_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_expires_at', services.db.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('payment_links', schema=None) as batch_op:
        batch_op.drop_column('provider_expires_at')

    with op.batch_alter_table('matters', schema=None) as batch_op:
        batch_op.drop_column('waiting_stage')

