"""The conversation log: one row per turn, with its feedback.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "turns",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("turn_id", sa.String(32), nullable=False, unique=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("doc", sa.String(100)),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("intent", sa.String(40)),
        sa.Column("answered", sa.Boolean, nullable=False),
        sa.Column("kind", sa.String(20)),
        sa.Column("reason", sa.Text),
        sa.Column("cited_doc", sa.String(100)),
        sa.Column("cited_anchors", sa.String(200)),
        sa.Column("top_score", sa.Float),
        sa.Column("latency_ms", sa.Float),
        sa.Column("page", sa.String(300)),
        sa.Column("rating", sa.String(4)),
        sa.Column("feedback_reason", sa.String(20)),
        sa.Column("feedback_comment", sa.Text),
        sa.Column("feedback_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_turns_at", "turns", ["at"])
    op.create_index("ix_turns_sender", "turns", ["sender"])


def downgrade() -> None:
    op.drop_index("ix_turns_sender", "turns")
    op.drop_index("ix_turns_at", "turns")
    op.drop_table("turns")
