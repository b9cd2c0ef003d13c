"""The words sent to models. Machine-readable parts are fenced JSON so any model can follow them."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sheen_pipeline.models import BuildRequest, Plan, Task
from sheen_pipeline.providers.base import BaseVersion
from sheen_pipeline.providers.schemas import TaskSpec


@dataclass(frozen=True)
class SystemBlock:
    """A piece of the system prompt; `cache` marks the shared block for prompt caching."""

    text: str
    cache: bool = False


# {"role", "content"}, and "images" (base64 PNGs) on a user message that shows screenshots:
# each transport turns those into its API's image parts.
Message = dict[str, Any]

PLANNER_INSTRUCTIONS = """You plan small web projects for an app builder.
Return JSON only, matching the schema. Split the work into 3 to 12 tasks.
Task types: setup_config, create_file, create_component, modify_file, install_deps.
Each task writes exactly one file (target_path, relative, no '..'); ids use letters, digits,
'_' and '-'. dependencies lists the ids of tasks whose files this task needs; never create
cycles. priority: 1 is the most important, 5 the least. The site must have index.html at the
top level, linking its stylesheet and scripts with relative paths. Use no external resources.
Also list 2 to 6 acceptance steps: how a person would check, in a browser, that the site does
what the request asks (the pipeline runs them on the preview). Actions: visit (target: a path of
the site), click (target: a button's or link's text), fill (target: a field's label or
placeholder; value: what to type), press (value: a key such as Enter), expect_text and
expect_no_text (value: a text), expect_count (target: a CSS selector; value: "3" or ">=1"),
expect_url (target: a path). For a signup form: fill its fields, click its button, expect the
confirmation; for a todo app: add an item, expect it listed."""

BUILDER_INSTRUCTIONS = """You write the files of one task of a small web project that an app
builder turns into a live preview. Every task of every build receives these same instructions,
then the user's request and the whole plan, then its own task and the files it builds on.

Output
- Return JSON only, matching the schema: {"files": [{"path": ..., "content": ...}]}. No prose
  before or after it, no Markdown code fences around it.
- Write exactly the file named by the task's target_path, unless the task type says otherwise.
  Paths are relative to the site root, use forward slashes, and never contain '..', a leading
  '/', a drive letter or a backslash.
- Write each file complete, from its first line to its last. Never write "..." or "rest of the
  file unchanged", never leave TODOs, placeholders or lorem ipsum. Keep files compact: no long
  comments, no commented-out code, no repeated blocks that a loop or a class could express.
- For modify_file, you are given the file's current content. When the change is small, answer
  with edits instead of the whole file: {"files": [], "edits": [{"path": ..., "search": ...,
  "replace": ...}]}, where each search is a piece of the current file copied exactly (a few
  whole lines, found exactly once) and replace is what takes its place; edits apply in order.
  When most of the file changes, return the whole new content in files, with the change
  applied and everything else kept exactly as it was.

Task types
- setup_config: a configuration or data file (site.json, package.json) that other tasks read.
- create_file: a page or a stylesheet, written whole.
- create_component: a script (or a reusable piece of markup) that adds behaviour to the pages:
  form validation, a todo list, a chart drawn on a <canvas> or in SVG, a gallery, tabs.
- modify_file: a change to a file that exists (one an earlier task wrote, or one of the version
  being changed), such as adding page metadata to index.html; you are given that file.
- delete_file: never given to you; the pipeline removes the file itself.
- install_deps: the dependency list of an npm project; only when the plan asks for npm.

HTML
- Valid HTML5: <!DOCTYPE html>, <html lang="en">, <meta charset="utf-8">, a viewport meta tag
  (width=device-width, initial-scale=1), a meaningful <title>, and one visible <h1>.
- Use landmarks and semantics: <header>, <nav>, <main>, <section> with headings in order,
  <footer>; lists for lists, <button> for actions, <a href> for navigation.
- Link the stylesheet and scripts with relative paths exactly as the plan names them; load
  scripts with <script src="..." defer></script>. Use no external resources at all: no CDNs, web
  fonts, analytics, remote images or iframes. Draw simple images with inline SVG or CSS.
- Every image has an alt text; every form control has a <label>; every button has text.
- Escape any text taken from the user's request before putting it into HTML: &, <, >, " and '.

CSS
- One stylesheet for the site unless the plan says otherwise. Start with a few custom
  properties (colours, spacing, font stack) and use them throughout.
- Mobile first: the page must not scroll sideways at 390 px wide. Use flexbox or grid, max-width
  on text columns, and media queries (min-width) for wider screens.
- Sufficient contrast between text and background (WCAG AA), visible focus styles, and
  prefers-reduced-motion respected for any animation.

JavaScript
- Plain modern JavaScript in the browser, no frameworks, no build step, no modules that need
  a bundler. Wait for the DOM (defer, or DOMContentLoaded) and select elements by the ids and
  classes the HTML of this build uses; check that an element exists before using it.
- Never use eval, new Function, document.write, or innerHTML with user text; use textContent.
- Forms validate in the browser before anything is sent: required fields, email format, and a
  visible message next to the field (aria-live="polite") when a value is missing or wrong. An
  empty submit is blocked with such a message. There is no server: on success, show a thank-you
  message in the page instead of submitting.
- Store data the page keeps (a todo list, preferences) in localStorage, under one key named
  after the site, and survive a missing or corrupt value.

Consistency across tasks
- Other tasks of the same build write the other files, at the same time as you. Use exactly the
  file names, ids, classes, data attributes, function names and texts that the plan and the files
  you are given use; when you introduce a name other files need, choose the obvious one from the
  task's description and use it everywhere.
- Content comes from the request: the business or person's name, the place, the sections and
  forms asked for. Write real, specific, friendly copy for them, in the request's language.

Before you answer, check
- The page would render with no console errors: every id and class your script looks up exists
  in the HTML of this build, every function you call is defined, every path you link is a file
  of the plan.
- Headings go from h1 down without skipping levels; the page still makes sense with CSS off and
  can be used with the keyboard alone (tab order follows the visual order, nothing traps focus).
- The answer is valid JSON: strings escaped (quotes, backslashes, newlines as \\n), no trailing
  commas, every bracket closed. A shorter complete file is always better than a longer one that
  is cut off at the output limit.

Config files
- site.json (setup_config) holds the site's name, tagline, location, colours and the list of
  sections and forms, as plain JSON without comments; other tasks read their texts from it.
- package.json only for npm projects the plan asks for: a build script that writes the site to
  dist/, and no install scripts."""


CHANGE_INSTRUCTIONS = """This time you plan a change to a project that already exists: you are given
its files (the tree, and the contents of the files you may need) and the requests that made it.
Plan only the tasks for files that change; every file you do not name stays exactly as it is.
Use modify_file for an existing file (target_path must be a file of the tree), create_file or
create_component for a new one, and delete_file to remove one. Usually 1 to 4 tasks; a task
that modifies a file another task creates depends on it."""


def plan_system() -> list[SystemBlock]:
    return [SystemBlock(PLANNER_INSTRUCTIONS, cache=True)]


def change_system() -> list[SystemBlock]:
    return [*plan_system(), SystemBlock(CHANGE_INSTRUCTIONS, cache=True)]


def change_request(request: BuildRequest, base: BaseVersion) -> list[Message]:
    """The base (its line of prompts, tree and shown contents), then the change asked for."""
    history = "\n".join(f"{n}. {p}" for n, p in enumerate(base.prompts, start=1))
    tree = "\n".join(f"{path} ({size} bytes)" for path, size in sorted(base.tree.items()))
    shown = "\n\n".join(
        f'<file path="{path}">\n{content}\n</file>'
        for path, content in sorted(base.contents.items())
    )
    framework = request.framework or "static (plain HTML, CSS and JavaScript)"
    return [
        {
            "role": "user",
            "content": f"The project (framework: {framework}) was made by these requests:\n"
            f"{history}\n\nIts files:\n{tree}\n\n{shown}\n\nPlan this change:\n<request>\n"
            f"{request.prompt}\n</request>",
        }
    ]


def plan_request(request: BuildRequest) -> list[Message]:
    framework = request.framework or "static (plain HTML, CSS and JavaScript)"
    return [
        {
            "role": "user",
            "content": f"Plan this project (framework: {framework}).\n\n<request>\n"
            f"{request.prompt}\n</request>",
        }
    ]


def shared_context(plan: Plan) -> str:
    """The same for every task of a build, so it is cached after the first task."""
    tasks = [TaskSpec.from_task(t).model_dump(mode="json") for t in plan.tasks]
    return (
        f"The user asked for:\n<request>\n{plan.request.prompt}\n</request>\n\n"
        f"The plan ({plan.summary}):\n```json\n{json.dumps(tasks, indent=1)}\n```"
    )


def task_system(plan: Plan) -> list[SystemBlock]:
    """Stable first, so the API can cache the prefix: the instructions (the same for every build,
    long enough to be cached on their own), then the request and the plan (the same for every
    task of the build); the task itself comes last, in the user message."""
    return [
        SystemBlock(BUILDER_INSTRUCTIONS, cache=True),
        SystemBlock(shared_context(plan), cache=True),
    ]


def task_request(
    task: Task, context_files: Mapping[str, str], images: Sequence[bytes] = ()
) -> list[Message]:
    files = "\n\n".join(
        f'<file path="{path}">\n{content}\n</file>'
        for path, content in sorted(context_files.items())
    )
    spec = json.dumps(TaskSpec.from_task(task).model_dump(mode="json"), indent=1)
    message: Message = {
        "role": "user",
        "content": f"Do this task:\n```json\n{spec}\n```\n\n"
        f"Files written by the tasks it depends on:\n{files or '(none)'}",
    }
    if images:
        message["images"] = [base64.b64encode(image).decode() for image in images]
    return [message]


def dependency_request(tasks: tuple[Task, ...], cycles: list[list[str]]) -> list[Message]:
    specs = [TaskSpec.from_task(t).model_dump(mode="json") for t in tasks]
    listed = "; ".join(" -> ".join([*c, c[0]]) for c in cycles)
    return [
        {
            "role": "user",
            "content": f"These tasks have dependency cycles ({listed}):\n```json\n"
            f"{json.dumps(specs, indent=1)}\n```\nReturn every task id with dependencies "
            "that keep what each task needs and contain no cycle.",
        }
    ]


def cut_off_request() -> Message:
    return {
        "role": "user",
        "content": "Your previous answer was cut off at the output length limit, so it was "
        "discarded. Answer again from the start, complete and valid, and shorter: fewer words, "
        "no comments, compact markup.",
    }


def repair_request(error: str) -> Message:
    return {
        "role": "user",
        "content": "Your answer did not pass validation:\n"
        f"{error}\nReturn the corrected JSON only, matching the schema.",
    }
