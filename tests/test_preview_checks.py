"""Every preview is looked at in real Chromium: the offline sites pass every check, broken pages
fail the right one, a blocking failure fails the build naming it, and without a browser the
checks say they did not run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance

from sheen_pipeline.build.sandbox import Sandbox
from sheen_pipeline.checks.browser import check_preview
from sheen_pipeline.checks.repair import failure_lines, repair_target
from sheen_pipeline.checks.results import CHECKS, CheckReport, CheckResult
from sheen_pipeline.config import SandboxSettings
from sheen_pipeline.events.types import EventType
from sheen_pipeline.models import AcceptanceStep
from sheen_pipeline.providers.schemas import FilesSpec
from sheen_pipeline.runs.local import BuildOutcome
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.files import Stage
from tests.providers.conftest import llm_env
from tests.support.builds import build
from tests.support.fake_llm import AnthropicWire, FakeLLMServer, Recorded, Reply, offline_answer

GOOD_HEAD = "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>t</title>"
VIEWPORT = "<meta name='viewport' content='width=device-width, initial-scale=1'>"


@pytest.fixture
def checks_on(sheen_home: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("SHEEN_PREVIEW_CHECKS", "on")
    return monkeypatch


def checked_event(service: BuildService, build_id: str) -> dict[str, object]:
    (checked,) = [e for e in service.events.after(build_id) if e.type == EventType.PREVIEW_CHECKED]
    return checked.data


@pytest.fixture(scope="session")
def npm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One npm cache for the React builds of the session, as the builds of a machine share one."""
    return tmp_path_factory.mktemp("npm-cache")


@pytest.mark.parametrize(
    ("prompt", "framework"),
    [
        (
            "a landing page for Blue Fern Coffee in Portland, with a signup form and a contact form",
            None,
        ),
        ("a todo app to track my chores", None),
        ("a dashboard of monthly sales", None),
        ("a portfolio for a photographer named Ada", None),
        ("a blog about tea called Leaf Notes", None),
        ("a landing page for Blue Fern Coffee, with a signup form", "react"),
    ],
)
def test_the_offline_sites_pass_every_check(
    checks_on: pytest.MonkeyPatch,
    instance: DagsterInstance,
    npm_cache: Path,
    prompt: str,
    framework: str | None,
) -> None:
    checks_on.setenv("SHEEN_NPM_CACHE", str(npm_cache))
    service = BuildService.from_env()
    outcome, lines = build(instance, service, prompt=prompt, framework=framework)
    assert outcome.status == "succeeded", outcome.error
    checked = checked_event(service, outcome.build_id)
    failing = [c for c in checked["checks"] if c["passed"] is not True]  # type: ignore[union-attr]
    assert failing == []
    assert [c["name"] for c in checked["checks"]] == list(CHECKS)  # type: ignore[union-attr]
    printed = [line for chunk in lines for line in chunk.splitlines()]  # as the CLI prints them
    assert sum(line.startswith("check ") for line in printed) == len(CHECKS)
    shots = service.settings.screenshots_dir / outcome.build_id / "0"  # the first round's
    for name in ("desktop", "mobile"):
        assert (shots / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    evaluations = [
        entry.dagster_event.event_specific_data
        for entry in instance.all_logs(outcome.dagster_run_ids[1])
        if entry.dagster_event is not None
        and entry.dagster_event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    assert sorted(e.check_name for e in evaluations) == sorted(CHECKS)  # type: ignore[union-attr]
    assert all(e.passed for e in evaluations)  # type: ignore[union-attr]


def site(page: str, **files: str) -> dict[str, bytes]:
    return {"index.html": page.encode(), **{name: text.encode() for name, text in files.items()}}


H1 = "<h1>Blue Fern Coffee</h1>"
BLANK = "renders_content,title_and_heading"  # a blank page has no visible heading either
FORM = (
    "<form novalidate><label>Email <input name='email' required></label><button>Go</button></form>"
)


@pytest.mark.parametrize(
    ("body", "head", "forms", "failing"),
    [
        (H1 + "<script>window.nope();</script>", VIEWPORT, 0, "no_errors"),
        (H1, VIEWPORT + "<link rel='stylesheet' href='missing.css'>", 0, "assets_load"),
        (H1 + "<div style='width:900px'>wide</div>", VIEWPORT, 0, "mobile_overflow"),
        (H1 + FORM, VIEWPORT, 1, "forms_validate"),
        ("<p>no heading, but text</p>", VIEWPORT, 0, "title_and_heading"),
        (
            H1 + "<script>setTimeout(() => { throw new Error('late'); }, 1500);</script>",
            VIEWPORT,
            0,
            "no_errors",
        ),
        ("<div id='root'></div>", VIEWPORT, 0, BLANK),
        (
            "<div id='root'></div><script>const app = document.querySelector('#app');"
            " if (app) app.innerHTML = '<h1>Hello there</h1>';</script>",
            VIEWPORT,
            0,
            BLANK,
        ),
        ("<h1 style='display:none'>Blue Fern Coffee</h1>", VIEWPORT, 0, BLANK),
        (  # text the colour of its background: present, but nothing a person can see
            "<h1 style='color:#fff'>Blue Fern Coffee</h1><p style='color:#fff'>Fresh beans</p>",
            VIEWPORT,
            0,
            "renders_content",
        ),
    ],
)
def test_a_broken_page_fails_the_right_check(
    tmp_path: Path, body: str, head: str, forms: int, failing: str
) -> None:
    page = f"{GOOD_HEAD}{head}</head><body><main>{body}</main></body></html>"
    report = check_preview(site(page), forms, tmp_path / "shots", Sandbox(SandboxSettings()))
    failed = [r.name for r in report.results if r.passed is False]
    assert failed == failing.split(","), [r.line() for r in report.results]


def test_a_blocking_failure_fails_the_build_naming_the_check(
    checks_on: pytest.MonkeyPatch, instance: DagsterInstance
) -> None:
    checks_on.setenv("SHEEN_TEST_PROVIDER", "tests.support.providers:ScriptErrorOfflineProvider")
    service = BuildService.from_env()
    outcome, _ = build(instance, service)
    assert outcome.status == "failed"
    assert "preview checks failed: no_errors: uncaught: " in (outcome.error or "")
    assert "notDefinedAnywhere" in (outcome.error or "")


def test_a_react_app_that_builds_but_throws_is_caught_and_its_repair_told_the_source_line(
    checks_on: pytest.MonkeyPatch, instance: DagsterInstance, npm_cache: Path
) -> None:
    checks_on.setenv("SHEEN_NPM_CACHE", str(npm_cache))
    checks_on.setenv("SHEEN_TEST_PROVIDER", "tests.support.providers:ReactRuntimeErrorProvider")
    service = BuildService.from_env()
    outcome, lines = build(instance, service, framework="react")
    assert outcome.status == "failed"
    assert any("vite build" in line or "build started (npm)" in line for line in lines)
    error = outcome.error or ""  # React unmounts an app that throws: blank, and an error
    assert "preview checks failed: renders_content: the first screen is blank" in error
    assert "; no_errors: " in error and "window.notAFunction is not a function" in error
    app = service.files.find(outcome.build_id, Stage.SOURCE, "src/App.jsx")
    assert app is not None
    lines_of_app = service.files.read(app).decode().splitlines()
    thrown_at = next(n for n, text in enumerate(lines_of_app, 1) if "notAFunction" in text)
    assert f"(at src/App.jsx:{thrown_at}:" in error  # the bundle's frame, mapped to the source
    events = service.events.after(outcome.build_id)
    (started,) = [e for e in events if e.type == EventType.REPAIR_STARTED]
    assert any(f"(at src/App.jsx:{thrown_at}:" in line for line in started.data["failures"])
    (repaired,) = [e for e in events if e.type == EventType.REPAIR_COMPLETED]
    assert [f["path"] for f in repaired.data["files"]] == ["src/App.jsx"]  # the file it names
    maps = service.files.stage_files(outcome.build_id, Stage.SOURCE_MAPS)
    assert maps and all(m.path.endswith(".js.map") for m in maps)
    deployed = {a.path for a in service.files.stage_files(outcome.build_id, Stage.DIST)}
    assert not any(path.endswith(".map") for path in deployed)  # kept for the checks only


def test_without_a_browser_the_checks_say_so_and_the_build_still_succeeds(
    checks_on: pytest.MonkeyPatch, instance: DagsterInstance, tmp_path: Path
) -> None:
    checks_on.setenv("PATH", str(tmp_path))  # no chromium to be found
    service = BuildService.from_env()
    outcome, lines = build(instance, service)
    assert outcome.status == "succeeded", outcome.error
    checked = checked_event(service, outcome.build_id)
    assert {c["passed"] for c in checked["checks"]} == {None}  # type: ignore[union-attr]
    hint = "no browser (apt-get install chromium-headless-shell"
    assert all(hint in c["message"] for c in checked["checks"])  # type: ignore[union-attr]
    assert any("not run: no browser" in line for line in lines)


BROKEN = "<script>brokenByTheModel();</script></body>"


def breaking(always: bool) -> Callable[[Recorded], Reply]:
    """The offline answers, but the page the model writes throws (on repair too, if always)."""

    def answer(request: Recorded) -> Reply:
        reply = offline_answer(request)
        if request.schema_title != FilesSpec.__name__:
            return reply
        fixing = "failed these checks" in request.text and not always
        files = json.loads(reply.text)["files"]
        for file in files:
            if file["path"] == "index.html":
                clean = file["content"].replace(BROKEN, "</body>")  # offline keeps what it is shown
                file["content"] = clean if fixing else clean.replace("</body>", BROKEN)
        return Reply(json.dumps({"files": files}))

    return answer


def built_against(
    model: Callable[[Recorded], Reply], env: pytest.MonkeyPatch, instance: DagsterInstance
) -> tuple[BuildService, BuildOutcome, FakeLLMServer]:
    """The sample site built, with its checks, against a local Anthropic-format server that
    answers with `model`."""
    with FakeLLMServer(AnthropicWire(), default=model) as server:
        for name, value in llm_env("anthropic", server).items():
            env.setenv(name, value)
        service = BuildService.from_env()
        outcome, _ = build(instance, service)
    return service, outcome, server


@pytest.mark.parametrize("always_broken", [False, True])
def test_one_repair_round_fixes_a_broken_page_or_the_build_fails_naming_the_check(
    checks_on: pytest.MonkeyPatch, instance: DagsterInstance, always_broken: bool
) -> None:
    service, outcome, server = built_against(breaking(always_broken), checks_on, instance)
    types = [e.type for e in service.events.after(outcome.build_id)]
    assert types.count(EventType.REPAIR_STARTED) == types.count(EventType.REPAIR_COMPLETED) == 1
    assert types.count(EventType.PREVIEW_CHECKED) == 2  # before and after the repair
    (started,) = [
        e for e in service.events.after(outcome.build_id) if e.type == EventType.REPAIR_STARTED
    ]
    assert "brokenByTheModel" in started.data["failures"][0]  # the console went to the model
    repair_requests = [r for r in server.requests if "failed these checks" in r.text]
    assert len(repair_requests) == 1 and "brokenByTheModel" in repair_requests[0].text
    shown = repair_requests[0].images  # the model also sees what the browser saw
    assert len(shown) == 2 and all(image[:8] == b"\x89PNG\r\n\x1a\n" for image in shown)
    assert all(not r.images for r in server.requests if r not in repair_requests)
    with service.ledger.engine.connect() as conn:
        paid = conn.exec_driver_sql(
            "select count(*) from provider_calls where task_id = 'repair_1' and cost_nusd > 0"
        ).scalar()
    assert paid == 1  # priced like every call
    ran = {
        entry.dagster_event.step_key
        for entry in instance.all_logs(outcome.dagster_run_ids[1])
        if entry.dagster_event is not None and entry.dagster_event.is_step_success
    }
    if always_broken:
        assert outcome.status == "failed"
        assert "preview checks failed: no_errors: uncaught: " in (outcome.error or "")
        assert {"repair_1", "build_site_1", "deploy_preview_1"} <= ran
    else:
        assert outcome.status == "succeeded", outcome.error
        assert {"repair_1", "build_site_1", "deploy_preview_1", "check_preview_1"} <= ran
    rounds = [
        e.data["round"]
        for e in service.events.after(outcome.build_id)
        if e.type == EventType.PREVIEW_CHECKED
    ]
    assert rounds == [0, 1]
    shots = {
        a.path: a.sha256 for a in service.files.stage_files(outcome.build_id, Stage.SCREENSHOTS)
    }
    assert {"0/desktop.png", "1/desktop.png", "desktop.png"} <= shots.keys()
    assert shots["desktop.png"] == shots["1/desktop.png"]  # the latest round at today's URL
    latest = instance.get_latest_materialization_event(AssetKey(["sheen", "default", "preview"]))
    assert latest is not None and latest.asset_materialization is not None
    recorded = {k: v.value for k, v in latest.asset_materialization.metadata.items()}
    assert recorded["repair_rounds"] == 1
    assert recorded["fixed_by_repair"] == ([] if always_broken else ["no_errors"])
    round_zero = service.files.find(outcome.build_id, Stage.SCREENSHOTS, "0/desktop.png")
    assert round_zero is not None and service.files.read(round_zero) in shown  # kept as seen


def test_a_react_app_that_renders_nothing_fails_and_its_repair_targets_the_component(
    checks_on: pytest.MonkeyPatch, instance: DagsterInstance, npm_cache: Path
) -> None:
    checks_on.setenv("SHEEN_NPM_CACHE", str(npm_cache))
    checks_on.setenv("SHEEN_TEST_PROVIDER", "tests.support.providers:ReactNullProvider")
    service = BuildService.from_env()
    outcome, _ = build(instance, service, framework="react")
    assert outcome.status == "failed"  # the offline provider cannot repair it
    assert "preview checks failed: renders_content: the first screen is blank" in (
        outcome.error or ""
    )
    events = service.events.after(outcome.build_id)
    (started,) = [e for e in events if e.type == EventType.REPAIR_STARTED]
    assert started.data["failures"][0].startswith("renders_content: ")
    (repaired,) = [e for e in events if e.type == EventType.REPAIR_COMPLETED]
    assert [f["path"] for f in repaired.data["files"]] == ["src/App.jsx"]


def test_a_repair_targets_the_file_a_failure_names_or_the_app_component() -> None:
    sources = ["index.html", "src/App.jsx", "src/main.jsx", "src/Counter.jsx"]
    assert repair_target(["no_errors: uncaught: at Counter.jsx:4"], sources) == "src/Counter.jsx"
    assert repair_target(["renders_content: the first screen is blank"], sources) == "src/App.jsx"
    assert repair_target(["no_errors: uncaught: x"], ["index.html", "app.js"]) == "index.html"


def steps(*raw: tuple[str, str, str]) -> list[AcceptanceStep]:
    return [AcceptanceStep(action=a, target=t, value=v) for a, t, v in raw]  # type: ignore[arg-type]


SIGNUP = steps(
    ("fill", "Email", "ada@example.com"), ("click", "Join", ""), ("expect_text", "", "Thanks")
)
QUIET_FORM = (
    "<form id='f'><label>Email <input name='email'></label><button type='button'>Join</button>"
    "<p role='status'></p></form>"
)


@pytest.mark.parametrize(
    ("script", "passed", "says"),
    [
        (
            "document.querySelector('button').onclick = () => "
            "{ document.querySelector('[role=status]').textContent = 'Thanks!'; };",
            True,
            "3 acceptance steps passed",
        ),
        ("", False, "step 3 of 3 failed: expect_text 'Thanks'"),
    ],
)
def test_acceptance_steps_use_the_page_as_a_person_would(
    tmp_path: Path, script: str, passed: bool, says: str
) -> None:
    page = f"{GOOD_HEAD}{VIEWPORT}</head><body><main>{H1}{QUIET_FORM}<script>{script}</script></main></body></html>"
    shots = tmp_path / "shots"
    report = check_preview(site(page), 0, shots, Sandbox(SandboxSettings()), 300, SIGNUP)
    (result,) = [r for r in report.results if r.name == "acceptance"]
    assert (result.passed, result.blocking) == (passed, True), result.message
    assert says in result.message
    assert ("acceptance-failed" in report.screenshots) is not passed  # the failing step, seen


def test_acceptance_steps_never_leave_the_preview(tmp_path: Path) -> None:
    page = f"{GOOD_HEAD}{VIEWPORT}</head><body><main>{H1}</main></body></html>"
    escape = steps(("visit", "http://127.0.0.1:9/", ""), ("expect_text", "", "x"))
    report = check_preview(site(page), 0, tmp_path / "s", Sandbox(SandboxSettings()), 300, escape)
    (result,) = [r for r in report.results if r.name == "acceptance"]
    assert result.passed is False
    assert (
        "step 1 of 2 failed: visit 'http://127.0.0.1:9/': 'http://127.0.0.1:9/' is not a path"
        in (result.message)
    )


def test_a_failed_repair_call_names_the_checks_it_was_repairing(
    checks_on: pytest.MonkeyPatch, instance: DagsterInstance
) -> None:
    def refuse_the_repair(request: Recorded) -> Reply:
        if "failed these checks" in request.text:
            return Reply("images too large", status=400, error_type="invalid_request_error")
        return breaking(True)(request)

    _, outcome, _ = built_against(refuse_the_repair, checks_on, instance)
    assert outcome.status == "failed"
    assert "repair round 1 failed: while repairing no_errors: " in (outcome.error or "")


def test_failing_urls_reach_the_model_as_the_previews_own() -> None:
    broken = CheckResult(
        "assets_load",
        False,
        "1 broken: http://127.0.0.1:4173/missing.css",
        {"broken": ["http://127.0.0.1:4173/missing.css"]},
    )
    (line,) = failure_lines(CheckReport((broken,)), "http://127.0.0.1:8787/p/b1/")
    assert line == (
        "assets_load: 1 broken: http://127.0.0.1:8787/p/b1/missing.css "
        "(broken: http://127.0.0.1:8787/p/b1/missing.css)"
    )


def test_a_repair_whose_images_are_refused_is_asked_again_without_them(
    checks_on: pytest.MonkeyPatch, instance: DagsterInstance
) -> None:
    def refuse_images(request: Recorded) -> Reply:
        if request.images:
            return Reply("image exceeds 5 MB", status=400, error_type="invalid_request_error")
        return breaking(False)(request)

    _, outcome, server = built_against(refuse_images, checks_on, instance)
    assert outcome.status == "succeeded", outcome.error
    repairs = [r for r in server.requests if "failed these checks" in r.text]
    assert [bool(r.images) for r in repairs] == [True, False]
