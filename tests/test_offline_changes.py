"""The offline provider's follow-ups, on the files of its own sites: each kind of change it
understands, and a clear refusal of what it does not."""

from __future__ import annotations

import json

import pytest

from sheen_pipeline.models import Plan, Task, TaskType, parse_build_request
from sheen_pipeline.providers.base import BaseVersion, PlanDraft, ProviderError
from sheen_pipeline.providers.offline import OfflineProvider

SITE = "a landing page for Blue Fern Coffee in Portland, with a signup form and a contact form"


def offline_site(prompt: str = SITE, framework: str | None = None) -> BaseVersion:
    """Every file the offline provider writes for `prompt`, as a base."""
    request = parse_build_request(prompt=prompt, framework=framework)
    provider = OfflineProvider()
    *_, draft = provider.stream_plan(request)
    assert isinstance(draft, PlanDraft)
    plan = Plan(build_id="b1", request=request, summary=draft.summary, tasks=draft.tasks)
    files: dict[str, str] = {}
    for task in draft.tasks:
        files.update(provider.render_files(task, plan, files).files)
    return BaseVersion("b1", {p: len(c) for p, c in files.items()}, files, (prompt,))


def changed(base: BaseVersion, prompt: str) -> tuple[dict[str, str], list[Task]]:
    """The files after the change, and its tasks."""
    provider = OfflineProvider()
    request = parse_build_request(prompt=prompt, base_build_id=base.build_id)
    *tasks, draft = provider.stream_change(request, base)
    assert isinstance(draft, PlanDraft) and tuple(tasks) == draft.tasks
    plan = Plan(build_id="b2", request=request, summary=draft.summary, tasks=draft.tasks)
    files = dict(base.contents)
    for task in draft.tasks:
        if task.type is TaskType.DELETE_FILE:
            del files[task.input.target_path]
        else:
            files.update(provider.render_files(task, plan, files).files)
    return files, list(draft.tasks)


def test_a_colour_change_edits_the_stylesheet_only() -> None:
    files, tasks = changed(offline_site(), "make the header dark green")
    assert [t.input.target_path for t in tasks] == ["styles.css"]
    assert "--primary: #1f5f3a;" in files["styles.css"]


def test_renaming_the_site_changes_every_file_that_names_it() -> None:
    base = offline_site()
    files, tasks = changed(base, 'rename the site to "Red Fern & Co"')
    assert {t.input.target_path for t in tasks} == {"index.html", "site.json", "js/forms.js"}
    assert all("Blue Fern Coffee" not in files[t.input.target_path] for t in tasks)
    assert json.loads(files["site.json"])["name"] == "Red Fern & Co"
    assert "<h1>Red Fern &amp; Co</h1>" in files["index.html"]
    assert "Blue Fern Coffee" not in files["index.html"]


def test_a_section_is_added_with_a_link_and_refused_twice() -> None:
    base = offline_site()
    files, _ = changed(base, "add an opening hours section")
    page = files["index.html"]
    assert '<section id="opening-hours">\n<h2>Opening hours</h2>' in page
    assert '<a href="#opening-hours">Opening hours</a></nav>' in page
    again = BaseVersion("b2", base.tree, files, ())
    with pytest.raises(ProviderError, match="already has a section 'opening-hours'"):
        changed(again, "add an opening hours section")


def test_removing_one_form_keeps_the_other_and_its_script() -> None:
    files, tasks = changed(offline_site(), "remove the signup form")
    assert [t.type for t in tasks] == [TaskType.MODIFY_FILE]
    assert 'id="signup"' not in files["index.html"] and 'id="contact"' in files["index.html"]
    assert '<a href="#signup">' not in files["index.html"]
    assert "js/forms.js" in files and 'src="js/forms.js"' in files["index.html"]


def test_removing_every_form_deletes_the_form_script() -> None:
    files, tasks = changed(offline_site(), "remove the forms")
    assert {(t.type, t.input.target_path) for t in tasks} == {
        (TaskType.MODIFY_FILE, "index.html"),
        (TaskType.DELETE_FILE, "js/forms.js"),
    }
    assert "<form" not in files["index.html"] and "forms.js" not in files["index.html"]


def test_a_text_is_changed_and_several_changes_combine() -> None:
    files, tasks = changed(
        offline_site(), "change 'Sign up' to 'Join us', then make the buttons orange"
    )
    assert {t.input.target_path for t in tasks} == {"index.html", "styles.css"}
    assert "Join us" in files["index.html"] and "Sign up" not in files["index.html"]
    assert "--accent: #e65100;" in files["styles.css"]


def test_react_apps_change_too() -> None:
    files, tasks = changed(
        offline_site(framework="react"), "add a section about pricing and remove the signup form"
    )
    assert [t.input.target_path for t in tasks] == ["src/App.jsx"]
    app = files["src/App.jsx"]
    assert '<section id="pricing">' in app and "<SignupForm />" not in app


def test_what_it_cannot_do_is_refused_naming_what_it_can() -> None:
    with pytest.raises(ProviderError, match=r"cannot make the change 'make it pop'.*colour"):
        changed(offline_site(), "make it pop")
    with pytest.raises(ProviderError, match="no text 'Free WiFi'"):
        changed(offline_site(), "change 'Free WiFi' to 'x'")
