"""Incident groups: the groups, each incident's group, each message's group, and the label
that declares rules related.

Existing incidents and outbox rows keep every value and get no group (NULL): they are told of
and listed exactly as before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 19:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vigil.store.migrations.rebuild import keeping_rule_children

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "incident_groups",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=True),
        sa.Column("window_s", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_groups")),
    )
    op.create_index(
        op.f("ix_incident_groups_opened_at"), "incident_groups", ["opened_at"], unique=False
    )
    with op.batch_alter_table("rules") as batch:
        batch.add_column(sa.Column("group_label", sa.String(length=100), nullable=True))
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("group_id", sa.Uuid(), nullable=True))
        batch.create_index(op.f("ix_incidents_group_id"), ["group_id"], unique=False)
    with op.batch_alter_table("notification_outbox") as batch:
        batch.add_column(sa.Column("group_id", sa.Uuid(), nullable=True))
        batch.create_index(
            op.f("ix_notification_outbox_group_id_channel"), ["group_id", "channel"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notification_outbox") as batch:
        batch.drop_index(op.f("ix_notification_outbox_group_id_channel"))
        batch.drop_column("group_id")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_index(op.f("ix_incidents_group_id"))
        batch.drop_column("group_id")

    def rebuild() -> None:
        with op.batch_alter_table("rules") as batch:
            batch.drop_column("group_label")

    keeping_rule_children(rebuild)
    op.drop_index(op.f("ix_incident_groups_opened_at"), table_name="incident_groups")
    op.drop_table("incident_groups")
