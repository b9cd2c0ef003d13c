"""The production shape: app tables and Dagster's own storage both on Postgres."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from sheen_pipeline.store.builds import BuildStatus, BuildStore
from tests.conftest import REPO_ROOT
from tests.support.databases import postgres_database, postgres_schema
from tests.support.processes import sheen_cli_env, sheen_here


def test_sheen_build_with_everything_on_postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with postgres_schema() as app_url, postgres_database() as dagster_url:
        env = sheen_cli_env(
            tmp_path, SHEEN_DATABASE_URL=app_url, SHEEN_DAGSTER_POSTGRES_URL=dagster_url
        )
        shutil.copy(
            REPO_ROOT / "deploy" / "postgres" / "dagster.yaml",
            Path(env["DAGSTER_HOME"]) / "dagster.yaml",
        )
        result = sheen_here(
            env, "build", "a portfolio for Ada Lovelace with a contact form", "--json"
        )
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout.splitlines()[-1])
        assert summary["status"] == "succeeded"
        assert BuildStore(app_url).get_build(summary["build_id"]).status is BuildStatus.SUCCEEDED

        monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
        monkeypatch.setenv("SHEEN_DAGSTER_POSTGRES_URL", dagster_url)
        with DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            runs = [instance.get_run_by_id(run_id) for run_id in summary["dagster_run_ids"]]
            assert [run.status for run in runs if run] == [DagsterRunStatus.SUCCESS] * 2
