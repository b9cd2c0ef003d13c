"""Table definitions; create_all is idempotent, so every process may run it at start."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, MetaData, String, Table, Text

metadata = MetaData()

builds = Table(
    "builds",
    metadata,
    Column("build_id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("user_id", String(64), nullable=False, index=True),
    Column("request_json", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("current_run_id", String(64)),
    Column("preview_url", Text),
    Column("usage_json", Text),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

plans = Table(
    "plans",
    metadata,
    Column("build_id", String(64), ForeignKey("builds.build_id"), primary_key=True),
    Column("plan_json", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
