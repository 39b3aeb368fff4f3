"""The staff console: accounts, and the labels staff give citizens' questions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # how sure the scope model was (its probability that the notice does not answer): staff
    # review the turns it was least sure of
    op.add_column("turns", sa.Column("p_out_of_scope", sa.Float))
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("doc", sa.String(100), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("anchor", sa.String(100), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_by", sa.String(64)),
        sa.Column("undone_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_labels_doc", "labels", ["doc"])


def downgrade() -> None:
    op.drop_index("ix_labels_doc", "labels")
    op.drop_table("labels")
    op.drop_table("staff")
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("p_out_of_scope")
