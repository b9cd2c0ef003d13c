"""Table definitions; create_all is idempotent, so every process may run it at start."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

builds = Table(
    "builds",
    metadata,
    Column("build_id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("user_id", String(64), nullable=False, index=True),
    Column("request_json", Text, nullable=False),
    Column("base_build_id", String(64), index=True),  # the version this one changes
    Column("status", String(32), nullable=False),
    Column("current_run_id", String(64)),
    Column("run_started_at", DateTime(timezone=True)),
    Column("approval", String(16)),  # required | approved | rejected | expired
    Column("preview_url", Text),
    Column("usage_json", Text),
    Column("error", Text),
    Column("heartbeat_at", Float),  # unix seconds; renewed by the process running the build
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

plans = Table(
    "plans",
    metadata,
    Column("build_id", String(64), ForeignKey("builds.build_id"), primary_key=True),
    Column("plan_json", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)

build_events = Table(
    "build_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # the cursor
    Column("event_id", String(64), nullable=False, unique=True),
    Column("build_id", String(64), nullable=False, index=True),
    Column("type", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("data_json", Text, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("event_seq", Integer, ForeignKey("build_events.seq"), primary_key=True),
    Column("build_id", String(64), nullable=False, index=True),
    Column("status", String(16), nullable=False, index=True),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),  # unix seconds
    Column("leased_until", Float, nullable=False, default=0.0),
    Column("last_error", Text),
    Column("delivered_at", Float),
    Column("quick_retries", Integer, nullable=False, default=0, server_default="0"),
    Column("queued_at", Float),  # when the event was stored: the lag runs from here
)

webhook_endpoints = Table(
    "webhook_endpoints",  # the receiver's health, shared by every deliverer
    metadata,
    Column("url_hash", String(64), primary_key=True),  # sha256 of the URL
    Column("disabled_at", Float),  # set by a 410 Gone; `sheen webhooks enable` clears it
    Column("disabled_reason", Text),
    Column("failing_since", Float),  # first failure since the last success
    Column("last_attempt_at", Float, nullable=False, default=0.0),
    Column("last_success_at", Float),
    Column("deliverer_seen_at", Float, nullable=False, default=0.0),  # a long-running deliverer
)

deployments = Table(
    "deployments",  # where each build was deployed, and what its upload sent
    metadata,
    Column("build_id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("target", String(32), nullable=False),
    Column("url", Text, nullable=False),
    Column("version_id", String(64)),  # the target's version (a Cloudflare Worker version)
    Column("uploaded_files", Integer, nullable=False),
    Column("reused_files", Integer, nullable=False),
    Column("uploaded_bytes", BigInteger, nullable=False),
    Column("reused_bytes", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

production = Table(
    "production",  # what each project serves in production, and who put it there
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("build_id", String(64), nullable=False),
    Column("target", String(32), nullable=False),
    Column("url", Text, nullable=False),
    Column("promoted_by", String(128), nullable=False),
    Column("promoted_at", DateTime(timezone=True), nullable=False),
)

rate_windows = Table(
    "rate_windows",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("window_start", Float, nullable=False),
    Column("count", Integer, nullable=False),
)

build_requests = Table(
    "build_requests",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # the sensor's cursor
    Column("request_id", String(64), nullable=False, unique=True),
    Column("build_id", String(64), nullable=False, unique=True),
    Column("user_id", String(64), nullable=False, index=True),
    Column("project_id", String(64), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("framework", String(32)),
    Column("base_build_id", String(64)),  # a build id, 'latest' or 'production'; then resolved
    Column("idempotency_key", String(128), index=True, unique=True),  # the ingress' webhook-id
    Column("status", String(32), nullable=False, index=True),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

provider_calls = Table(
    "provider_calls",  # the ledger: what every paid call (or result-cache hit) cost, and for whom
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("build_id", String(64), nullable=False, index=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("user_id", String(64), nullable=False, index=True),
    Column("provider", String(64), nullable=False),
    Column("model", String(128), nullable=False),
    Column("kind", String(16), nullable=False),  # plan | task
    Column("task_id", String(64)),
    Column("outcome", String(16), nullable=False),  # ok | rejected | error | cache_hit
    Column("calls", Integer, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cache_read_tokens", Integer, nullable=False),
    Column("cache_write_tokens", Integer, nullable=False),
    Column("cost_nusd", BigInteger),  # nano-dollars, exact; NULL when the price is unknown
    Column("saved_nusd", BigInteger, nullable=False),  # a result-cache hit: the original cost
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)

budget_reservations = Table(
    "budget_reservations",  # the worst case of calls in flight, held against budgets
    metadata,
    Column("reservation_id", String(32), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("user_id", String(64), nullable=False, index=True),
    Column("amount_nusd", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("build_id", String(64), index=True),  # released, all of them, when the build ends
)

result_cache = Table(
    "result_cache",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("payload_json", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
)

blobs = Table(  # the database artifact store: file contents by their sha256
    "blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

build_files = Table(  # which content each path of a build's stage (source, dist, screenshots) has
    "build_files",
    metadata,
    Column("build_id", String(64), primary_key=True),
    Column("stage", String(16), primary_key=True),
    Column("path", String(512), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
)

step_outputs = Table(  # Dagster step outputs (by run, step and output) kept in the artifact store
    "step_outputs",
    metadata,
    Column("output_key", String(512), primary_key=True),
    Column("sha256", String(64), nullable=False),
)
