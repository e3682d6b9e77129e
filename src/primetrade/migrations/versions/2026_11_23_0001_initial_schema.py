"""Initial schema: users, sign-in sessions, tasks with full-text search, idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)
TAGS = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# SQLite: an FTS5 index whose rowids come from a small map table keyed by task id, so an
# update or delete finds its index row through a primary key rather than a scan.
SQLITE_SEARCH = [
    "CREATE TABLE tasks_fts_map (rowid INTEGER PRIMARY KEY, task_id CHAR(32) NOT NULL UNIQUE)",
    "CREATE VIRTUAL TABLE tasks_fts USING fts5("
    "title, description, tokenize = 'unicode61 remove_diacritics 0')",
    """CREATE TRIGGER tasks_fts_insert AFTER INSERT ON tasks BEGIN
        INSERT INTO tasks_fts_map (task_id) VALUES (new.id);
        INSERT INTO tasks_fts (rowid, title, description)
            VALUES (last_insert_rowid(), new.title, new.description);
    END""",
    """CREATE TRIGGER tasks_fts_update AFTER UPDATE OF title, description ON tasks BEGIN
        UPDATE tasks_fts SET title = new.title, description = new.description
            WHERE rowid = (SELECT rowid FROM tasks_fts_map WHERE task_id = old.id);
    END""",
    """CREATE TRIGGER tasks_fts_delete AFTER DELETE ON tasks BEGIN
        DELETE FROM tasks_fts
            WHERE rowid = (SELECT rowid FROM tasks_fts_map WHERE task_id = old.id);
        DELETE FROM tasks_fts_map WHERE task_id = old.id;
    END""",
]
SQLITE_SEARCH_DROP = [
    "DROP TRIGGER IF EXISTS tasks_fts_delete",
    "DROP TRIGGER IF EXISTS tasks_fts_update",
    "DROP TRIGGER IF EXISTS tasks_fts_insert",
    "DROP TABLE IF EXISTS tasks_fts",
    "DROP TABLE IF EXISTS tasks_fts_map",
]
# PostgreSQL: a generated tsvector (title weighted A, description B) under a GIN index. The
# 'simple' configuration does no stemming, like SQLite's unicode61 tokenizer. ASCII
# punctuation becomes a space first: PostgreSQL's parser would otherwise keep `example.com`,
# `v1.5` or `a@b.io` as single words, where SQLite (and the query side) see two or three.
_WORDS_OF = "regexp_replace(coalesce({}, ''), '[!-/:-@\\[-`{{-~]+', ' ', 'g')"
POSTGRES_SEARCH = [
    "ALTER TABLE tasks ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    f"setweight(to_tsvector('simple', {_WORDS_OF.format('title')}), 'A') || "
    f"setweight(to_tsvector('simple', {_WORDS_OF.format('description')}), 'B')) STORED",
    "CREATE INDEX ix_tasks_search_vector ON tasks USING gin (search_vector)",
    "CREATE INDEX ix_tasks_tags ON tasks USING gin (tags jsonb_path_ops)",
    # `ORDER BY due_at DESC NULLS LAST, id DESC` (undated tasks last both ways) is not the
    # backward order of the ascending index, which puts NULLs first when read backwards.
    "CREATE INDEX ix_tasks_owner_id_due_at_desc_id ON tasks "
    "(owner_id, due_at DESC NULLS LAST, id DESC)",
]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("full_name", sa.String(200), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column(
            "role",
            sa.Enum("user", "admin", name="role", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_index("ix_users_created_at", "users", ["created_at", "id"])
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("last_used_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("revoked_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("user_agent", sa.String(300), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_auth_sessions_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_auth_sessions"),
    )
    op.create_index("ix_auth_sessions_user_id", "auth_sessions", ["user_id"])
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("used_at", UTC_TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["auth_sessions.id"],
            name="fk_refresh_tokens_session_id_auth_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_refresh_tokens"),
    )
    op.create_index("ix_refresh_tokens_session_id", "refresh_tokens", ["session_id"])
    _create_tasks()
    op.create_table(
        "idempotency_keys",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])


def _create_tasks() -> None:
    op.create_table(
        "tasks",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("title_key", sa.String(800), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("todo", "in_progress", "done", name="taskstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("due_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("tags", TAGS, nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("completed_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name="fk_tasks_owner_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("owner_id", "id", name="pk_tasks"),
    )
    op.create_index("ix_tasks_id", "tasks", ["id"])
    for column in ("created_at", "updated_at", "due_at", "priority", "title_key"):
        op.create_index(f"ix_tasks_owner_id_{column}_id", "tasks", ["owner_id", column, "id"])
    op.create_index("ix_tasks_owner_id_status", "tasks", ["owner_id", "status"])
    statements = POSTGRES_SEARCH if op.get_bind().dialect.name == "postgresql" else SQLITE_SEARCH
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_SEARCH_DROP:
            op.execute(statement)
    op.drop_table("idempotency_keys")
    op.drop_table("tasks")
    op.drop_table("refresh_tokens")
    op.drop_table("auth_sessions")
    op.drop_table("users")
