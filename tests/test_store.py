"""The app tables on SQLite and Postgres: schema creation and migration, events, rate limits,
engines a forked child does not share."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, inspect

from sheen_pipeline.events.log import EventLog
from sheen_pipeline.events.payloads import TaskFailed, TaskStarted
from sheen_pipeline.models import parse_build_request
from sheen_pipeline.service import BuildService
from sheen_pipeline.store import engines
from sheen_pipeline.store.builds import BuildStatus, BuildStore
from sheen_pipeline.store.engines import engine_for
from sheen_pipeline.store.rate import take
from sheen_pipeline.store.schema import MIGRATIONS, current_revision, ensure_schema, head
from sheen_pipeline.store.tables import builds, metadata
from tests.support.processes import in_forked_child


def test_schema_is_created_once_and_safe_to_ensure_again(database_url: str) -> None:
    engine = engine_for(database_url)
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    assert current_revision(engine) == "0011"
    BuildStore(database_url).create_build("b1", parse_build_request(prompt="a site"))
    for _ in range(2):
        ensure_schema(engine)
    assert BuildStore(database_url).get_build("b1").status is BuildStatus.PLANNING


def test_the_newest_migration_file_is_alembics_only_head() -> None:
    """ensure_schema skips Alembic when the stored revision is head(), read from the file names."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [head()]


def test_concurrent_starts_on_a_fresh_database(database_url: str) -> None:
    errors: list[BaseException] = []
    engines = [create_engine(database_url) for _ in range(4)]

    def start(engine: object) -> None:
        try:
            ensure_schema(engine)  # type: ignore[arg-type]
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=start, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert current_revision(engines[0]) == "0011"
    for engine in engines:
        engine.dispose()


def test_an_early_database_is_stamped_then_migrated(database_url: str) -> None:
    engine = create_engine(database_url)
    metadata.create_all(engine)  # the first version made its tables without migrations
    with engine.begin() as conn:  # and had no result cache, run start times or plans by age
        conn.exec_driver_sql("DROP TABLE result_cache")
        conn.exec_driver_sql("DROP INDEX ix_plans_created_at")
        conn.exec_driver_sql("DROP TABLE provider_calls")
        conn.exec_driver_sql("DROP TABLE budget_reservations")
        conn.exec_driver_sql("DROP INDEX ix_build_requests_idempotency_key")
        conn.exec_driver_sql("ALTER TABLE build_requests DROP COLUMN idempotency_key")
        conn.exec_driver_sql("ALTER TABLE builds DROP COLUMN run_started_at")
        conn.exec_driver_sql("DROP TABLE webhook_endpoints")
        conn.exec_driver_sql("DROP TABLE deployments")
        conn.exec_driver_sql("DROP TABLE production")
        conn.exec_driver_sql("ALTER TABLE builds DROP COLUMN heartbeat_at")
        conn.exec_driver_sql("DROP INDEX ix_builds_base_build_id")
        conn.exec_driver_sql("ALTER TABLE builds DROP COLUMN base_build_id")
        conn.exec_driver_sql("ALTER TABLE build_requests DROP COLUMN base_build_id")
        conn.exec_driver_sql("ALTER TABLE webhook_deliveries DROP COLUMN quick_retries")
        conn.exec_driver_sql("ALTER TABLE webhook_deliveries DROP COLUMN queued_at")
        for table in ("blobs", "build_files", "step_outputs"):
            conn.exec_driver_sql(f"DROP TABLE {table}")
    now = datetime.now(UTC)
    request_json = parse_build_request(prompt="x").model_dump_json()
    with engine.begin() as conn:
        conn.execute(
            builds.insert().values(
                build_id="old",
                project_id="p",
                user_id="u",
                request_json=request_json,
                status="succeeded",
                created_at=now,
                updated_at=now,
            )
        )
    ensure_schema(engine)
    assert current_revision(engine) == "0011"
    assert "result_cache" in inspect(engine).get_table_names()
    assert {"run_started_at", "base_build_id"} <= {
        c["name"] for c in inspect(engine).get_columns("builds")
    }
    assert "base_build_id" in {c["name"] for c in inspect(engine).get_columns("build_requests")}
    assert "provider_calls" in inspect(engine).get_table_names()
    assert {"webhook_endpoints", "deployments", "production", "blobs", "step_outputs"} <= set(
        inspect(engine).get_table_names()
    )
    assert "ix_plans_created_at" in {i["name"] for i in inspect(engine).get_indexes("plans")}
    assert BuildStore(database_url).get_build("old").status is BuildStatus.SUCCEEDED
    engine.dispose()


def test_events_are_ordered_and_read_after_a_cursor(db_service: BuildService) -> None:
    log = EventLog(
        db_service.store.engine, webhooks_enabled=False, secrets=("sk-ant-SECRET-123456",)
    )
    emitted = [log.emit("b1", TaskStarted(task_id=f"t{n}", name="t", attempt=1)) for n in range(5)]
    log.emit("b2", TaskStarted(task_id="other", name="other", attempt=1))
    assert [e.seq for e in emitted] == sorted(e.seq for e in emitted)
    assert [e.data["task_id"] for e in log.after("b1", emitted[1].seq)] == ["t2", "t3", "t4"]
    assert [e.id for e in log.after("b1", 0, limit=2)] == [e.id for e in emitted[:2]]
    failed = TaskFailed(
        task_id="t9", error="bad key sk-ant-SECRET-123456", attempt=1, will_retry=False
    )
    secret = log.emit("b1", failed)
    assert "SECRET" not in secret.data["error"] and "SECRET" not in str(
        log.after("b1", emitted[-1].seq)
    )


def test_rate_windows_hold_across_connections(database_url: str) -> None:
    engine = engine_for(database_url)
    now = 1_000_000.0
    assert [take(engine, "u", 3, 60, now=now + i) for i in range(4)] == [True, True, True, False]
    assert take(engine, "other", 3, 60, now=now)  # a separate limit
    assert take(engine, "u", 3, 60, now=now + 61)  # a new window

    results: list[bool] = []
    lock = threading.Lock()

    def grab() -> None:
        got = take(engine, "race", 5, 60, now=now)
        with lock:
            results.append(got)

    threads = [threading.Thread(target=grab) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results.count(True) == 5


def test_a_reader_of_the_embedded_database_never_blocks_a_writer(tmp_path: Path) -> None:
    """Many processes share the embedded database: in WAL mode a write commits while another
    connection is in the middle of a read, without waiting (the old journal made it wait, then
    fail with "database is locked")."""
    url = f"sqlite:///{tmp_path / 'sheen.db'}"
    store = BuildStore(url)
    store.create_build("bread", parse_build_request(prompt="a site"))
    with sqlite3.connect(tmp_path / "sheen.db", timeout=0) as reader:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM builds").fetchone() == (1,)
        store.create_build("bwrite", parse_build_request(prompt="another site"))  # no wait
        reader.execute("COMMIT")
    with engine_for(url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL: the ledger is money


def test_a_forked_child_opens_its_own_connections(database_url: str) -> None:
    """A connection used on both sides of a fork corrupts both (a Celery pool process is forked
    from a worker whose /healthz read the database): the child drops the pooled connections it
    inherited, unclosed, and is not stopped by an engine lock another thread held at the fork."""
    store = BuildStore(database_url)
    store.create_build("bparent", parse_build_request(prompt="a site"))
    pool = engine_for(database_url).pool
    assert pool.checkedin() >= 1  # kept in the parent

    def use_the_database() -> str:
        inherited = engine_for(database_url).pool.checkedin()
        store.create_build("bchild", parse_build_request(prompt="another site"))
        return f"{inherited} {store.get_build('bchild').status.value}"

    with engines._engines.lock:  # as another thread would, in the middle of engine_for
        answer = in_forked_child(use_the_database)
    assert answer == f"0 {BuildStatus.PLANNING.value}", answer
    # the parent's kept connections still work
    assert store.get_build("bchild").status is BuildStatus.PLANNING
