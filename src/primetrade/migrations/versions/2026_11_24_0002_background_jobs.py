"""Background work: the transactional outbox, job runs, dead jobs and the sent-mail log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_type", sa.String(100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.String(255), nullable=True),
        sa.Column("run_key", sa.String(255), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("available_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("published_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
    )
    op.create_index(
        "ix_outbox_published_at_available_at", "outbox", ["published_at", "available_at"]
    )
    op.create_table(
        "job_runs",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("job_type", sa.String(100), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("finished_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_job_runs"),
    )
    op.create_index("ix_job_runs_finished_at", "job_runs", ["finished_at"])
    op.create_table(
        "dead_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_type", sa.String(100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("run_key", sa.String(255), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failed_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("retried_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dead_jobs"),
    )
    op.create_index("ix_dead_jobs_failed_at_id", "dead_jobs", ["failed_at", "id"])
    op.create_table(
        "mail_sends",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("template", sa.String(100), nullable=False),
        sa.Column("sent_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_mail_sends"),
    )
    op.create_index("ix_mail_sends_sent_at", "mail_sends", ["sent_at"])
    op.create_index("ix_mail_sends_user_id_sent_at", "mail_sends", ["user_id", "sent_at"])


def downgrade() -> None:
    op.drop_table("mail_sends")
    op.drop_table("dead_jobs")
    op.drop_table("job_runs")
    op.drop_table("outbox")
