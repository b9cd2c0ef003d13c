"""Follow-up changes: a build made from a base carries the base's files over by hash, runs only
the tasks of the change, records its diff, and never touches its base; bases that cannot be
changed are refused before anything is spent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from sheen_pipeline.defs.build_job import make_build_job
from sheen_pipeline.defs.plan_job import plan_build
from sheen_pipeline.models import FileArtifact, TaskType, new_build_id, parse_build_request
from sheen_pipeline.runs.local import BuildOutcome, retry_build
from sheen_pipeline.runs.requests import pending_run_requests
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.builds import BuildStatus
from sheen_pipeline.store.deployments import Production
from sheen_pipeline.store.files import Stage
from sheen_pipeline.store.requests import new_request_id
from sheen_pipeline.versions.diff import DIFF_PATH, diff_versions
from sheen_pipeline.versions.listing import project_versions
from sheen_pipeline.versions.resolve import BaseRefused
from tests.conftest import FLAKY_PROVIDER
from tests.support.builds import PROMPT, build, deployed_page
from tests.support.processes import sheen_cli_env, sheen_here
from tests.support.providers import calls_by_task
from tests.support.services import s3_bucket

COLOUR = "make the header dark green and add an opening hours section"
BUILD_STEPS = {"build_site", "deploy_preview", "check_preview", "repair_1"}
BUILD_STEPS |= {f"{step}_1" for step in ("build_site", "deploy_preview", "check_preview")}


def first_version(instance: DagsterInstance, project_id: str = "coffee") -> BuildOutcome:
    outcome, _ = build(instance, project_id=project_id)
    assert outcome.status == "succeeded", outcome.error
    return outcome


def manifest(service: BuildService, build_id: str) -> dict[str, str]:
    return {a.path: a.sha256 for a in service.files.stage_files(build_id, Stage.SOURCE)}


def test_a_change_runs_only_its_tasks_and_carries_the_rest_over_by_hash(
    instance: DagsterInstance, service: BuildService
) -> None:
    base = first_version(instance)
    change, lines = build(instance, prompt=COLOUR, project_id="coffee", base_build_id="latest")
    assert change.status == "succeeded", change.error
    assert f"planning a change of {base.build_id}" in lines
    plan = service.store.get_plan(change.build_id)
    assert plan is not None and plan.base_build_id == base.build_id
    assert {(t.type, t.input.target_path) for t in plan.tasks} == {
        (TaskType.MODIFY_FILE, "index.html"),
        (TaskType.MODIFY_FILE, "styles.css"),
    }
    before, after = manifest(service, base.build_id), manifest(service, change.build_id)
    assert before.keys() == after.keys()
    assert {p for p in before if before[p] != after[p]} == {"index.html", "styles.css"}
    assert "--primary: #1f5f3a;" in deployed_page(change.build_id, "styles.css")
    page = deployed_page(change.build_id)
    assert '<section id="opening-hours">' in page and "Blue Fern Coffee" in page
    assert "opening-hours" not in deployed_page(base.build_id)  # the base is as it was
    assert service.store.get_build(base.build_id).status is BuildStatus.SUCCEEDED

    changes = service.change_diff(change.build_id)
    assert changes is not None and changes.base_build_id == base.build_id
    assert changes.changed == ("index.html", "styles.css") and not changes.added
    assert changes.lines_added >= 5 and changes.lines_removed >= 1
    assert "+<h2>Opening hours</h2>" in changes.text
    stored = service.files.find(change.build_id, Stage.CHANGES, DIFF_PATH)
    assert stored is not None and service.files.read(stored).decode() == changes.text


def test_the_preview_asset_records_the_change(
    instance: DagsterInstance, service: BuildService
) -> None:
    base = first_version(instance)
    change, _ = build(instance, prompt=COLOUR, project_id="coffee", base_build_id=base.build_id)
    records = instance.fetch_materializations(
        AssetKey(["sheen", "coffee", "preview"]), limit=10
    ).records
    latest = records[0].asset_materialization
    assert latest is not None
    metadata = {key: value.value for key, value in latest.metadata.items()}
    assert metadata["build_id"] == change.build_id
    assert metadata["base_build_id"] == base.build_id
    assert (metadata["files_changed"], metadata["files_added"], metadata["files_removed"]) == (
        2,
        0,
        0,
    )
    assert metadata["files_unchanged"] == 2
    assert "```diff" in str(metadata["diff"]) and "Opening hours" in str(metadata["diff"])


def test_removing_the_form_deletes_its_script_without_a_model_call(
    instance: DagsterInstance, service: BuildService
) -> None:
    base = first_version(instance)
    change, _ = build(
        instance, prompt="remove the signup form", project_id="coffee", base_build_id="latest"
    )
    assert change.status == "succeeded", change.error
    plan = service.store.get_plan(change.build_id)
    assert plan is not None
    deleted = [t for t in plan.tasks if t.type is TaskType.DELETE_FILE]
    assert [t.input.target_path for t in deleted] == ["js/forms.js"]
    assert "js/forms.js" not in manifest(service, change.build_id)
    page = deployed_page(change.build_id)
    assert "<form" not in page and "js/forms.js" not in page
    changes = service.change_diff(change.build_id)
    assert changes is not None and changes.removed == ("js/forms.js",)
    assert "js/forms.js" in manifest(service, base.build_id)


def test_two_changes_of_one_base_are_sibling_versions(
    instance: DagsterInstance, service: BuildService
) -> None:
    base = first_version(instance)
    green, _ = build(instance, prompt=COLOUR, project_id="coffee", base_build_id=base.build_id)
    renamed, _ = build(
        instance,
        prompt="rename the site to Red Fern Roasters",
        project_id="coffee",
        base_build_id=base.build_id,
    )
    assert (green.status, renamed.status) == ("succeeded", "succeeded")
    assert "Red Fern Roasters" in deployed_page(renamed.build_id)
    assert "opening-hours" not in deployed_page(renamed.build_id)
    assert "Red Fern" not in deployed_page(green.build_id)
    tree = project_versions("coffee", service.versions, service.files, service.deployments)
    assert [(v.build_id, v.depth) for v in tree] == [
        (base.build_id, 0),
        (green.build_id, 1),
        (renamed.build_id, 1),
    ]
    assert [v.files_changed for v in tree] == [None, 2, 3]  # renamed: site.json too
    assert (
        service.accept(
            parse_build_request(prompt="x", project_id="coffee", base_build_id="latest")
        ).base_build_id
        == renamed.build_id
    )


def test_an_identical_change_of_the_same_base_reuses_every_result(
    instance: DagsterInstance, service: BuildService
) -> None:
    base = first_version(instance)
    first, _ = build(instance, prompt=COLOUR, project_id="coffee", base_build_id=base.build_id)
    again, _ = build(instance, prompt=COLOUR, project_id="coffee", base_build_id=base.build_id)
    assert (first.status, again.status) == ("succeeded", "succeeded")
    events = service.events.after(again.build_id, 0, 100)
    planned = next(e for e in events if e.type.value == "plan_generated")
    assert planned.data["cache_hit"] is True
    done = [e for e in events if e.type.value == "task_completed"]
    assert done and all(e.data["cache_hit"] for e in done)
    assert manifest(service, again.build_id) == manifest(service, first.build_id)


def test_a_failed_change_leaves_its_base_and_production_untouched(
    instance: DagsterInstance, service: BuildService
) -> None:
    base = first_version(instance)
    assert base.build_id is not None and base.preview_url is not None
    service.deployments.set_production(
        Production("coffee", base.build_id, "local", base.preview_url, "test", datetime.now(UTC))
    )
    before = manifest(service, base.build_id)
    failed, _ = build(
        instance,
        prompt="change 'no such words' to 'x'",
        project_id="coffee",
        base_build_id="production",
    )
    assert failed.status == "failed" and "no text 'no such words'" in (failed.error or "")
    assert manifest(service, base.build_id) == before
    assert service.store.get_build(base.build_id).status is BuildStatus.SUCCEEDED
    live = service.deployments.production("coffee")
    assert live is not None and live.build_id == base.build_id
    assert "Blue Fern Coffee" in deployed_page(base.build_id)


@pytest.mark.parametrize(
    ("project_id", "base", "problem"),
    [
        ("coffee", "bunknown", "there is no build 'bunknown'"),
        ("tea", "OTHER", "belongs to project 'coffee', not 'tea'"),
        ("coffee", "FAILED", "is failed; only a succeeded build can be changed"),
        ("coffee", "PLANNING", "is planning; only a succeeded build can be changed"),
        ("empty", "latest", "project 'empty' has no succeeded build to change yet"),
        ("coffee", "production", "project 'coffee' has no build in production"),
    ],
)
def test_a_base_that_cannot_be_changed_is_refused_before_anything_is_spent(
    instance: DagsterInstance, service: BuildService, project_id: str, base: str, problem: str
) -> None:
    good = first_version(instance)
    service.store.create_build("bfailed", parse_build_request(prompt="x", project_id="coffee"))
    service.store.set_status("bfailed", BuildStatus.FAILED, error="it broke")
    service.store.create_build("bplanning", parse_build_request(prompt="x", project_id="coffee"))
    named = {"OTHER": good.build_id, "FAILED": "bfailed", "PLANNING": "bplanning"}.get(base, base)
    request = parse_build_request(prompt=COLOUR, project_id=project_id, base_build_id=named)
    with pytest.raises(BaseRefused, match=problem):
        service.accept(request)
    with pytest.raises(BaseRefused, match=problem):
        service.plan("bnever", request)
    assert "bnever" not in service.store.statuses({"bnever"})


def test_react_changes_rebuild_and_recheck_the_app(
    instance: DagsterInstance, service: BuildService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_PREVIEW_CHECKS", "on")
    base, _ = build(instance, project_id="app", framework="react")
    assert base.status == "succeeded", base.error
    change, lines = build(
        instance,
        prompt="add a section about pricing and make the header navy",
        project_id="app",
        base_build_id="latest",
    )
    assert change.status == "succeeded", change.error
    assert "build started (npm)" in lines
    assert "\ncheck no_errors (blocking) passed" in "\n".join(lines)
    changes = service.change_diff(change.build_id)
    assert changes is not None and changes.changed == ("src/App.jsx", "src/styles.css")
    bundle = "".join(
        deployed_page(change.build_id, a.path)
        for a in service.files.stage_files(change.build_id, Stage.DIST)
        if a.path.endswith(".js")
    )
    assert "Pricing" in bundle


def test_a_diff_is_unified_and_names_binary_files() -> None:
    contents = {"a": b"one\ntwo\n", "b": b"one\nTWO\n", "c": b"\xff\x00"}
    artifacts = {key: FileArtifact.of("f.txt", data) for key, data in contents.items()}
    read = {a.sha256: contents[key] for key, a in artifacts.items()}.__getitem__
    changes = diff_versions("base", [artifacts["a"]], [artifacts["b"]], lambda a: read(a.sha256))
    assert changes.text == "--- a/f.txt\n+++ b/f.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+TWO\n"
    assert (changes.lines_added, changes.lines_removed, changes.changed) == (1, 1, ("f.txt",))
    binary = diff_versions("base", [artifacts["a"]], [artifacts["c"]], lambda a: read(a.sha256))
    assert binary.text == "Binary files a/f.txt and b/f.txt differ\n"


def test_the_launchpad_and_a_request_row_can_name_a_base(
    instance: DagsterInstance, service: BuildService
) -> None:
    """`base_build_id` in plan_build's config (as the UI's Launchpad sends it) and in a row of
    build_requests (as the main app inserts it, 'latest' here): resolved, recorded, planned."""
    base = first_version(instance)
    launchpad = plan_build.execute_in_process(
        run_config={
            "ops": {
                "validate_request": {
                    "config": {"prompt": COLOUR, "project_id": "coffee", "base_build_id": "latest"}
                },
                "launch_build": {"config": {"submit": False}},
            }
        },
        instance=instance,
    )
    assert launchpad.success
    build_id = launchpad.output_for_node("generate_plan")
    plan = service.store.get_plan(build_id)
    assert plan is not None and plan.base_build_id == base.build_id
    job = make_build_job(plan, service.settings)
    assert {n.name for n in job.nodes} == {"change_1", "change_2", *BUILD_STEPS}

    row = service.requests.add(
        parse_build_request(prompt="rename the site to Oak", project_id="coffee", base="latest"),
        new_request_id(),
        new_build_id(),
    )
    assert row.base_build_id == "latest"
    (run_request,), _ = pending_run_requests(service.requests, 0, 10, datetime.now(UTC))
    from_row = plan_build.execute_in_process(
        run_config={
            **run_request.run_config,
            "ops": {
                **run_request.run_config["ops"],
                "launch_build": {"config": {"submit": False}},
            },
        },
        tags=run_request.tags,
        instance=instance,
    )
    assert from_row.success
    recorded = service.requests.find(row.request_id)
    assert recorded is not None and recorded.base_build_id == base.build_id
    planned = service.store.get_plan(row.build_id)
    assert planned is not None and planned.base_build_id == base.build_id


def test_a_change_on_postgres_and_the_s3_artifact_store(
    instance: DagsterInstance, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same carry-over by hash and diff with the app database on Postgres (and SQLite) and
    file contents in S3 (moto's server)."""
    with s3_bucket() as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        service = BuildService.from_env()
        base, _ = build(instance, service, project_id="coffee")
        change, _ = build(
            instance, service, prompt=COLOUR, project_id="coffee", base_build_id="latest"
        )
        assert change.status == "succeeded", change.error
        assert (
            manifest(service, change.build_id)["js/forms.js"]
            == manifest(service, base.build_id)["js/forms.js"]
        )
        changes = service.change_diff(change.build_id)
        assert changes is not None and changes.changed == ("index.html", "styles.css")
        assert "--primary: #1f5f3a;" in deployed_page(change.build_id, "styles.css")


def test_the_cli_changes_lists_and_diffs_versions(tmp_path: Path) -> None:
    env = sheen_cli_env(tmp_path)
    first = sheen_here(env, "build", "--project-id", "coffee", PROMPT, "--json")
    assert first.returncode == 0, first.stderr
    base_id = json.loads(first.stdout.splitlines()[-1])["build_id"]
    change = sheen_here(
        env, "build", "--project-id", "coffee", "--from", "latest", COLOUR, "--json"
    )
    assert change.returncode == 0, change.stderr
    summary = json.loads(change.stdout.splitlines()[-1])
    assert summary["status"] == "succeeded" and summary["task_count"] == 2

    listed = sheen_here(env, "versions", "coffee")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith(f"  {base_id}") and "new" in lines[0]
    assert lines[1].startswith(f"    {summary['build_id']}") and "2 files" in lines[1]
    diff = sheen_here(env, "diff", summary["build_id"])
    assert diff.returncode == 0 and diff.stdout.startswith("--- a/index.html\n+++ b/index.html")
    assert "2 changed, 0 removed, 2 unchanged" in diff.stderr

    refused = sheen_here(env, "build", "--project-id", "tea", "--from", base_id, COLOUR)
    assert refused.returncode == 2
    assert f"base: build {base_id} belongs to project 'coffee', not 'tea'" in refused.stderr
    assert sheen_here(env, "diff", base_id).returncode == 1  # built from scratch: no base


def test_a_failed_change_is_re_executed_from_failure_like_any_build(
    instance: DagsterInstance, sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = first_version(instance)
    monkeypatch.setenv("SHEEN_TEST_PROVIDER", FLAKY_PROVIDER)
    monkeypatch.setenv("SHEEN_TEST_FAIL_TASK", "change_2")
    service = BuildService.from_env()
    failed, _ = build(instance, service, prompt=COLOUR, project_id="coffee", base_build_id="latest")
    assert failed.status == "failed" and failed.build_id is not None
    assert "task change_2 failed: injected failure" in (failed.error or "")
    assert "opening-hours" not in deployed_page(base.build_id)  # the base is untouched
    again = retry_build(instance, service, failed.build_id, lambda _line: None)
    assert again.status == "succeeded", again.error
    assert calls_by_task(sheen_home, failed.build_id) == {"change_1": 1, "change_2": 2}
    assert "--primary: #1f5f3a;" in deployed_page(failed.build_id, "styles.css")
