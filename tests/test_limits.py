"""Hostile plans cost nothing: limits are checked before paid calls, generated files never land
in build tool folders, what is deployed is counted, and failed plans are never reused."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance

from sheen_pipeline.build.published import published
from sheen_pipeline.build.static import build_static
from sheen_pipeline.config import FileLimits
from sheen_pipeline.events.types import EventType
from sheen_pipeline.fsutil import TreeTooLarge
from sheen_pipeline.service import BuildService
from tests.support.builds import build
from tests.support.providers import calls_by_task

CHAIN = "tests.support.providers:ChainOfflineProvider"


@pytest.fixture
def chain(sheen_home: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("SHEEN_TEST_PROVIDER", CHAIN)
    return monkeypatch


def test_a_500_task_plan_is_refused_before_any_task_call(
    chain: pytest.MonkeyPatch, instance: DagsterInstance, sheen_home: Path
) -> None:
    outcome, _ = build(instance)
    assert outcome.status == "failed"
    assert "the plan has 500 tasks, over the limit of 40 (SHEEN_MAX_TASKS)" in (outcome.error or "")
    assert calls_by_task(sheen_home, outcome.build_id) == {}  # only the plan was asked for


def test_a_task_that_cannot_fit_fails_before_its_call(
    chain: pytest.MonkeyPatch, instance: DagsterInstance, sheen_home: Path
) -> None:
    chain.setenv("SHEEN_TEST_TASKS", "6")
    chain.setenv("SHEEN_MAX_FILES", "3")
    outcome, lines = build(instance)
    assert outcome.status == "failed"
    assert calls_by_task(sheen_home, outcome.build_id) == {"t0": 1, "t1": 1, "t2": 1}
    assert any("task t3 failed" in line and "no room for another" in line for line in lines)


@pytest.mark.parametrize("folder", ["node_modules", ".home"])
def test_generated_files_never_go_into_build_tool_folders(
    chain: pytest.MonkeyPatch, instance: DagsterInstance, sheen_home: Path, folder: str
) -> None:
    chain.setenv("SHEEN_TEST_TASKS", "3")
    chain.setenv("SHEEN_TEST_FOLDER", folder)
    outcome, _ = build(instance)
    assert outcome.status == "failed"
    assert f"is inside {folder}/, which build tools own" in (outcome.error or "")
    assert calls_by_task(sheen_home, outcome.build_id) == {}


def test_build_tool_output_is_never_deployed(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    (workspace / "node_modules" / "pkg").mkdir(parents=True)
    (workspace / ".home").mkdir()
    (workspace / "index.html").write_text("<h1>hi</h1>")
    for n in range(30):
        (workspace / "node_modules" / "pkg" / f"{n}.js").write_bytes(b"x" * 1000)
    (workspace / ".home" / "secret").write_text("token")
    files = build_static(workspace, tmp_path / "dist", FileLimits())
    assert [f.path for f in files] == ["index.html"]
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == ["index.html"]


def test_dotfiles_and_tool_folders_are_never_deployed_at_any_depth(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    hidden = [".env", "js/.env.local", ".git/config", "lib/node_modules/x.js", "a/.cache/b.css"]
    for path in [*hidden, "index.html", "js/app.js", ".well-known/security.txt"]:
        (workspace / path).parent.mkdir(parents=True, exist_ok=True)
        (workspace / path).write_text("x")
    files = build_static(workspace, tmp_path / "dist", FileLimits())
    assert sorted(f.path for f in files) == ["index.html", "js/app.js"]


def test_a_dotfile_is_published_when_the_frameworks_public_folder_holds_it() -> None:
    """Vite copies public/ into the site as it is: public/.well-known/security.txt is meant."""
    built = {"index.html": b"", ".well-known/security.txt": b"", "assets/.DS_Store": b""}
    kept, withheld = published(built, public={".well-known/security.txt"})
    assert sorted(kept) == [".well-known/security.txt", "index.html"]
    assert withheld == ["assets/.DS_Store"]


def test_what_is_deployed_is_counted_against_its_own_limit(tmp_path: Path) -> None:
    source, destination = tmp_path / "dist", tmp_path / "preview"
    source.mkdir()
    destination.mkdir()
    (destination / "index.html").write_text("the live version")
    for name in ("index.html", "0.html", "1.html"):
        (source / name).write_bytes(b"x" * 100)
    with pytest.raises(TreeTooLarge, match="3 files to deploy, over the limit of 2"):
        build_static(source, destination, FileLimits(max_deploy_files=2))
    with pytest.raises(TreeTooLarge, match="300 bytes to deploy, over the limit of 299"):
        build_static(source, destination, FileLimits(max_deploy_bytes=299))
    assert (destination / "index.html").read_text() == "the live version"  # untouched


def test_a_failed_plan_is_never_reused(
    sheen_home: Path, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_MAX_TASKS", "3")  # the offline plan has 5 tasks
    refused, _ = build(instance)
    assert refused.status == "failed"
    monkeypatch.delenv("SHEEN_MAX_TASKS")
    service = BuildService.from_env()

    def plan_cache_hit(build_id: str) -> bool:
        (generated,) = [
            e for e in service.events.after(build_id) if e.type == EventType.PLAN_GENERATED
        ]
        return bool(generated.data["cache_hit"])

    fixed, _ = build(instance, service)
    again, _ = build(instance, service)
    assert fixed.status == again.status == "succeeded"
    assert not plan_cache_hit(fixed.build_id)  # the failed plan was not kept
    assert plan_cache_hit(again.build_id)  # the one that was built from is
