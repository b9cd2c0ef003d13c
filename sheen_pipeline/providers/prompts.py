"""The words sent to models. Machine-readable parts are fenced JSON so any model can follow them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from sheen_pipeline.models import BuildRequest, Plan, Task
from sheen_pipeline.providers.schemas import TaskSpec


@dataclass(frozen=True)
class SystemBlock:
    """A piece of the system prompt; `cache` marks the shared block for prompt caching."""

    text: str
    cache: bool = False


Message = dict[str, str]

PLANNER_INSTRUCTIONS = """You plan small web projects for an app builder.
Return JSON only, matching the schema. Split the work into 3 to 12 tasks.
Task types: setup_config, create_file, create_component, modify_file, install_deps.
Each task writes exactly one file (target_path, relative, no '..'); ids use letters, digits,
'_' and '-'. dependencies lists the ids of tasks whose files this task needs; never create
cycles. priority: 1 is the most important, 5 the least. The site must have index.html at the
top level, linking its stylesheet and scripts with relative paths. Use no external resources."""

BUILDER_INSTRUCTIONS = """You write the files of one task of a web project.
Return JSON only, matching the schema: {"files": [{"path": ..., "content": ...}]}.
Write complete, working files: valid HTML5, CSS and plain JavaScript, no placeholders, no lorem
ipsum, no external resources. Keep names, ids, classes and imports consistent with the files
you are given. Escape any user text you put into HTML."""


def plan_system() -> list[SystemBlock]:
    return [SystemBlock(PLANNER_INSTRUCTIONS, cache=True)]


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
    return [SystemBlock(BUILDER_INSTRUCTIONS), SystemBlock(shared_context(plan), cache=True)]


def task_request(task: Task, context_files: Mapping[str, str]) -> list[Message]:
    files = "\n\n".join(
        f'<file path="{path}">\n{content}\n</file>'
        for path, content in sorted(context_files.items())
    )
    spec = json.dumps(TaskSpec.from_task(task).model_dump(mode="json"), indent=1)
    return [
        {
            "role": "user",
            "content": f"Do this task:\n```json\n{spec}\n```\n\n"
            f"Files written by the tasks it depends on:\n{files or '(none)'}",
        }
    ]


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
