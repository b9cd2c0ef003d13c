from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterInstance, instance_for_test

from sheen_pipeline.service import BuildService
from sheen_pipeline.store.engines import dispose_engine
from tests.support.databases import postgres_schema

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT_INSTANCE: dict[str, Any] = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
FLAKY_PROVIDER = "tests.support.providers:FlakyOfflineProvider"
# Tests that start whole servers (`dagster dev`, Celery workers, a Postgres stack) or build
# several apps (React + Vite, a burst of CLI builds) take half a minute or more each: they are
# handed out first, two at a time (`make test` uses `--dist load --maxschedchunk 2`), so that
# they spread over the workers and none is left running one of them alone at the end.
LONGEST_FIRST = (  # the longest first
    "test_celery_workers.py",
    "_react",
    "test_daemon_e2e.py",
    "test_deployment_walkthrough.py",
    "test_ui_reexecution.py",
    "ten_cli_builds",
    "four_builds",
    "receiver_down_20s",
    "broken_apps",
    "serve_and_build_started_together",
    "test_builds_end.py",
    "test_postgres_stack.py",
)


def _handed_out(item: pytest.Item) -> int:
    """The index of the first mark of LONGEST_FIRST in the test's id; the rest come after."""
    return next(
        (n for n, mark in enumerate(LONGEST_FIRST) if mark in item.nodeid), len(LONGEST_FIRST)
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_handed_out)  # stable otherwise


@pytest.fixture(autouse=True)
def default_signal_dispositions() -> None:
    """Every process a test starts inherits this process's ignored signals. pytest-xdist's
    workers ignore SIGINT, and each Dagster run executed here maps SIGTERM to SIGINT's handler
    (dagster._utils.interrupts), so without this the servers a test starts would ignore both
    (stopped only by SIGKILL after their grace), and Dagster would wait 30 s for each compute-log
    `tail` it ends with SIGTERM."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def no_browser_checks_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checking a preview in Chromium takes seconds per build; tests/test_preview_checks.py
    turns it on, other tests build without it (their builds report the checks as not run).
    Builds that are checked watch each page 300 ms after its network is idle instead of 1.5 s:
    the late-error test checks a page with the default window."""
    monkeypatch.setenv("SHEEN_PREVIEW_CHECKS", "off")
    monkeypatch.setenv("SHEEN_CHECK_SETTLE_MS", "300")


@pytest.fixture
def sheen_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SHEEN_HOME with the embedded defaults (SQLite, offline provider)."""
    home = tmp_path / "sheen"
    monkeypatch.setenv("SHEEN_HOME", str(home))
    for name in (
        "SHEEN_DATABASE_URL",
        "SHEEN_PROVIDER",
        "SHEEN_TEST_PROVIDER",
        "SHEEN_REQUIRE_PLAN_APPROVAL",
    ):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def service(sheen_home: Path) -> BuildService:
    return BuildService.from_env()


STORAGES = ("event_log_storage", "run_storage", "schedule_storage")


def project_storage(home: Path) -> dict[str, Any]:
    """Instance config with dagster.yaml's storages, their files under home (its config names
    the home by DAGSTER_HOME, which a test's instance does not set)."""
    return {
        name: {
            **PROJECT_INSTANCE[name],
            "config": {key: str(home) for key in PROJECT_INSTANCE[name]["config"]},
        }
        for name in STORAGES
    }


# Runs executed in a test's process print nothing worth keeping, and capturing their output
# starts a `tail` and a Python watcher per stream per run (about 550 interpreters a suite). The
# CLI, daemon and UI tests keep Dagster's capture, as their instances are the product's.
UNCAPTURED = {
    "compute_logs": {
        "module": "dagster._core.storage.noop_compute_log_manager",
        "class": "NoOpComputeLogManager",
    }
}


@pytest.fixture(scope="session")
def dagster_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Dagster instance folder with its storage created and migrated once per test process;
    each test starts from a copy (migrating anew costs about 2 s, copying 0.1 s). Runs, events
    and schedules are stored as dagster.yaml stores them (the per-run SQLite event log default
    costs a build a fifth more)."""
    folder = tmp_path_factory.mktemp("dagster-template")
    with instance_for_test(project_storage(folder), temp_dir=str(folder)) as template:
        template.get_runs(limit=1)
        template.schedule_storage.all_instigator_state()  # type: ignore[union-attr]
    return folder


@pytest.fixture
def instance(tmp_path: Path, dagster_template: Path) -> Iterator[DagsterInstance]:
    dagster_home = tmp_path / "dagster"
    shutil.copytree(dagster_template, dagster_home)
    overrides = {**project_storage(dagster_home), **UNCAPTURED}
    with instance_for_test(overrides, temp_dir=str(dagster_home)) as test_instance:
        yield test_instance


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The app database, once on SQLite and once on Postgres; SHEEN_DATABASE_URL points at it."""
    if request.param == "sqlite":
        sheen_home.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{sheen_home / 'sheen.db'}"
        monkeypatch.setenv("SHEEN_DATABASE_URL", url)
        yield url
        dispose_engine(url)
        return
    with postgres_schema() as url:
        monkeypatch.setenv("SHEEN_DATABASE_URL", url)
        yield url


@pytest.fixture
def db_service(database_url: str) -> BuildService:
    return BuildService.from_env()
