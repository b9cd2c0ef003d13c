from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, instance_for_test

from sheen_pipeline.pipeline import BuildPipeline

REPO_ROOT = Path(__file__).resolve().parent.parent
FLAKY_PROVIDER = "tests.support.providers:FlakyOfflineProvider"


@pytest.fixture
def sheen_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SHEEN_HOME with the embedded defaults (SQLite, offline provider)."""
    home = tmp_path / "sheen"
    monkeypatch.setenv("SHEEN_HOME", str(home))
    for name in ("SHEEN_DATABASE_URL", "SHEEN_PROVIDER", "SHEEN_REQUIRE_PLAN_APPROVAL"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def pipeline(sheen_home: Path) -> BuildPipeline:
    return BuildPipeline.from_env()


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    with instance_for_test(temp_dir=str(dagster_home)) as test_instance:
        yield test_instance
