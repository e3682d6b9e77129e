"""Data jobs: archived tasks and exports.

Archiving adds `tasks.archived_at`. Every default list and the stats filter on
`archived_at IS NULL`, so the indexes that matter for them are partial ones over the live
rows (SQLite and PostgreSQL both have partial indexes): the default order of the list, and
the archiving job's scan for long-completed tasks. Archived rows get a small index of their
own for `archived=true`. The existing owner indexes stay: archived tasks are done tasks
completed long ago, a small share that a walk of those indexes skips.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)
LIVE = sa.text("archived_at IS NULL")
ARCHIVED = sa.text("archived_at IS NOT NULL")


def upgrade() -> None:
    # Plain ALTER TABLE on both engines: a batch (copy-and-rename) on SQLite would drop the
    # full-text triggers of the table.
    op.add_column("tasks", sa.Column("archived_at", UTC_TIMESTAMP, nullable=True))
    _partial_index("ix_tasks_owner_id_created_at_id_live", ["owner_id", "created_at", "id"], LIVE)
    _partial_index("ix_tasks_completed_at_live", ["completed_at"], LIVE)
    _partial_index("ix_tasks_owner_id_archived_at", ["owner_id", "archived_at"], ARCHIVED)
    op.create_table(
        "exports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("finished_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name="fk_exports_owner_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_exports"),
    )
    op.create_index(
        "ix_exports_owner_id_created_at_id", "exports", ["owner_id", "created_at", "id"]
    )
    op.create_index("ix_exports_status_expires_at", "exports", ["status", "expires_at"])


def _partial_index(name: str, columns: list[str], where: sa.TextClause) -> None:
    op.create_index(name, "tasks", columns, sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    op.drop_table("exports")
    for name in (
        "ix_tasks_owner_id_archived_at",
        "ix_tasks_completed_at_live",
        "ix_tasks_owner_id_created_at_id_live",
    ):
        op.drop_index(name, "tasks")
    op.drop_column("tasks", "archived_at")
