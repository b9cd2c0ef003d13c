"""`sheen build` and `sheen serve` as a user runs them: subprocesses and a real HTTP GET. What a
build prints and its exit code in other cases, through click's runner in this process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from sheen_pipeline.terminal import printable
from tests.conftest import FLAKY_PROVIDER
from tests.support.builds import PROMPT
from tests.support.processes import SHEEN, running, sheen, sheen_cli_env, sheen_here
from tests.support.waiting import wait_for


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return sheen_cli_env(tmp_path)


def test_build_then_serve_the_preview(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = sheen(cli_env, "build", PROMPT, "--project-id", "fern", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "succeeded"
    assert summary["task_count"] == 5
    assert summary["cost_usd"] == 0.0
    assert summary["tokens"]["input"] == 0 and summary["tokens"]["output"] == 0
    assert "index.html" in summary["files"] and "styles.css" in summary["files"]
    assert len(summary["dagster_run_ids"]) == 2
    port = cli_env["SHEEN_PREVIEW_PORT"]
    assert summary["preview_url"] == f"http://127.0.0.1:{port}/p/{summary['build_id']}/"
    assert "plan ready with 5 tasks" in result.stderr
    assert "task index_page done" in result.stderr

    with running([SHEEN, "serve"], cli_env, tmp_path / "serve.log"):

        def page() -> requests.Response | None:
            try:
                return requests.get(summary["preview_url"], timeout=5)
            except requests.ConnectionError:
                return None

        response = wait_for(page, 60, "the preview server")
        assert response.status_code == 200
        assert "<h1>Blue Fern Coffee</h1>" in response.text
        css = requests.get(summary["preview_url"] + "styles.css", timeout=5)
        assert css.status_code == 200 and "text/css" in css.headers["content-type"]
        listing = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert summary["build_id"] not in listing.text  # previews are shared, never listed
        escape = requests.get(f"http://127.0.0.1:{port}/p/%2e%2e/sheen.db", timeout=5)
        assert escape.status_code == 404


def test_plain_output_ends_with_the_preview_url(cli_env: dict[str, str]) -> None:
    result = sheen_here(cli_env, "build", "a todo app")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "planning"
    assert lines[-1].startswith("preview: http://127.0.0.1:")


def test_invalid_request_is_refused_before_any_run(cli_env: dict[str, str]) -> None:
    result = sheen_here(cli_env, "build", "   ", "--user-id", "no spaces")
    assert result.returncode == 2
    assert "invalid build request: prompt: must not be empty; user_id: may contain only" in (
        result.stderr
    )


def test_a_blocked_plan_is_blocked_in_every_interface(cli_env: dict[str, str]) -> None:
    env = cli_env | {
        "SHEEN_TEST_PROVIDER": "tests.support.providers:CyclicOfflineProvider",
        "SHEEN_MAX_CYCLE_EDGES_TO_DROP": "0",
        "SHEEN_SEQUENTIAL_FALLBACK": "false",
        "SHEEN_REQUIRE_PLAN_APPROVAL": "true",
    }
    built = sheen_here(env, "build", PROMPT, "--json")
    assert built.returncode == 4, built.stderr
    summary = json.loads(built.stdout.splitlines()[-1])
    assert summary["status"] == "blocked" and "cycles" in summary["error"]
    status = sheen_here(env, "status", summary["build_id"])
    assert status.returncode == 0 and " blocked " in f" {status.stdout} "


def test_failed_build_exits_non_zero_with_json(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "SHEEN_TEST_PROVIDER": FLAKY_PROVIDER, "SHEEN_TEST_FAIL_TASK": "styles"}
    result = sheen_here(env, "build", PROMPT, "--json")
    assert result.returncode == 1
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "failed"
    assert summary["preview_url"] is None
    assert summary["error"] == "task styles failed: injected failure in task styles"


def test_serve_and_build_started_together_on_a_fresh_instance_leave_it_usable(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Both open Dagster's storage first thing; it is created once, so later commands work."""
    with running([SHEEN, "serve"], cli_env, tmp_path / "serve.log"):
        built = sheen(cli_env, "build", PROMPT, "--json")
    assert built.returncode == 0, built.stderr
    for later in (sheen(cli_env, "status"), sheen(cli_env, "build", "a blog about tea")):
        assert later.returncode == 0, later.stderr
        assert "more than one head" not in later.stderr


def test_what_the_cli_prints_cannot_drive_the_terminal() -> None:
    forged = "\x1b[2K\r\x1b[1A build completed\x1b]0;owned\x07 \x9b31mred\x07\x00 end\ttab\nnext"
    assert printable(forged) == " build completed red end\ttab\nnext"
    for module in (Path(__file__).parents[1] / "sheen_pipeline" / "cli").glob("*.py"):
        assert "click.echo" not in module.read_text(), module  # all through terminal.echo
