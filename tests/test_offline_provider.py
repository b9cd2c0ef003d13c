"""The offline provider plans real multi-task plans and writes working, escaped sites."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path

import anyio
import networkx as nx
import pytest

from sheen_pipeline.execution.tasks import context_files, generate, write_files
from sheen_pipeline.execution.workspace import Workspace
from sheen_pipeline.models import TaskResult, TaskType, parse_build_request
from sheen_pipeline.planning.dag import LadderPolicy, dependency_graph
from sheen_pipeline.planning.planner import make_plan
from sheen_pipeline.providers.offline import OfflineProvider
from sheen_pipeline.providers.offline.brief import read_brief
from tests.support.html_check import check_html


def build_offline(prompt: str, root: Path) -> tuple[Workspace, list[str]]:
    """Plan and run every task in dependency order, without Dagster."""
    provider = OfflineProvider()
    plan = make_plan(parse_build_request(prompt=prompt), "b1", provider, LadderPolicy()).plan
    workspace = Workspace(root)
    results: dict[str, TaskResult] = {}
    for task_id in nx.topological_sort(dependency_graph(plan.tasks)):
        task = plan.task(task_id)
        upstream = [results[d] for d in task.input.dependencies]
        context = context_files(task, upstream, workspace, lambda a: workspace.read(a.path))
        generated = anyio.run(generate, task, plan, provider, context, 30)
        results[task_id] = write_files(task, generated.files, workspace, generated.usage)
    return workspace, [t.id for t in plan.tasks]


@pytest.mark.parametrize(
    ("prompt", "kind", "name"),
    [
        (
            "a landing page for Blue Fern Coffee in Portland, with a signup form",
            "landing",
            "Blue Fern Coffee",
        ),
        ("a portfolio for Ada Lovelace with a contact form", "portfolio", "Ada Lovelace"),
        ("a blog called Slow Mornings about tea", "blog", "Slow Mornings"),
        ("a todo app for Team Rocket", "todo", "Team Rocket"),
        ("an analytics dashboard for Acme Corp", "dashboard", "Acme Corp"),
        ("a website for a yoga studio in Leeds", "site", "Yoga Studio"),
    ],
)
def test_each_kind_builds_a_working_site(prompt: str, kind: str, name: str, tmp_path: Path) -> None:
    brief = read_brief(prompt)
    assert (brief.kind, brief.name) == (kind, name)
    workspace, task_ids = build_offline(prompt, tmp_path)
    assert len(task_ids) >= 4
    page = workspace.read("index.html")
    checker = check_html(page)
    assert f"<h1>{name}</h1>" in page
    assert "lorem" not in page.lower()
    for link in checker.links:
        assert workspace.exists(posixpath.normpath(link)), f"{link} is linked but missing"
    assert any(tag == "link" and attrs.get("rel") == "stylesheet" for tag, attrs in checker.tags)
    assert 'name="description"' in page  # written by the modify_file task


def test_plan_has_real_dependencies_and_task_types(tmp_path: Path) -> None:
    request = parse_build_request(prompt="a landing page for Blue Fern Coffee with a signup form")
    plan = make_plan(request, "b1", OfflineProvider(), LadderPolicy()).plan
    by_id = {t.id: t for t in plan.tasks}
    assert by_id["index_page"].input.dependencies == ("config", "styles", "forms")
    assert by_id["page_metadata"].type is TaskType.MODIFY_FILE
    assert {t.type for t in plan.tasks} >= {
        TaskType.SETUP_CONFIG,
        TaskType.CREATE_FILE,
        TaskType.CREATE_COMPONENT,
        TaskType.MODIFY_FILE,
    }
    assert plan.recovery == ()


def test_signup_form_validates_in_the_browser(tmp_path: Path) -> None:
    workspace, _ = build_offline("a landing page for Blue Fern Coffee with a signup form", tmp_path)
    page = workspace.read("index.html")
    checker = check_html(page)
    inputs = {attrs.get("name"): attrs for tag, attrs in checker.tags if tag == "input"}
    assert inputs["email"]["type"] == "email" and "required" in inputs["email"]
    assert "required" in inputs["name"]
    assert any(tag == "form" and "data-validate" in attrs for tag, attrs in checker.tags)
    script = workspace.read("js/forms.js")
    assert "checkValidity()" in script and "reportValidity()" in script
    assert '"Blue Fern Coffee"' in script


def test_contact_form_only_when_asked(tmp_path: Path) -> None:
    workspace, task_ids = build_offline("a portfolio for Ada Lovelace", tmp_path)
    assert "forms" not in task_ids
    assert "<form" not in workspace.read("index.html")


def test_prompt_text_is_escaped_everywhere(tmp_path: Path) -> None:
    prompt = 'a landing page called "Evil</script><script>alert(1)</script>" with a signup form'
    workspace, _ = build_offline(prompt, tmp_path)
    page = workspace.read("index.html")
    checker = check_html(page)
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert [attrs.get("src") for tag, attrs in checker.tags if tag == "script"] == ["js/forms.js"]
    script = workspace.read("js/forms.js")
    assert "</script>" not in script and "<script>" not in script
    assert "\\u003c/script\\u003e" in script
    assert "alert(1)" not in workspace.read("styles.css")
    assert json.loads(workspace.read("site.json"))["name"].startswith("Evil</script>")


def test_dashboard_data_is_valid_json_in_the_page(tmp_path: Path) -> None:
    workspace, _ = build_offline("an analytics dashboard for Acme Corp", tmp_path)
    page = workspace.read("index.html")
    start = page.index('<script type="application/json" id="metrics-data">') + len(
        '<script type="application/json" id="metrics-data">'
    )
    data = json.loads(page[start : page.index("</script>", start)])
    assert len(data["series"]) == 6
