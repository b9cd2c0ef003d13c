"""The offline provider's plans: real multi-task plans with real dependencies, per kind of site."""

from __future__ import annotations

from sheen_pipeline.models import Task, TaskInput, TaskType
from sheen_pipeline.providers.offline.brief import SiteBrief

CONFIG_PATH = "site.json"
STYLES_PATH = "styles.css"
INDEX_PATH = "index.html"
FORMS_PATH = "js/forms.js"
TODO_PATH = "js/todo.js"
DASHBOARD_PATH = "js/dashboard.js"
POST_PATH = "posts/welcome.html"


def _task(
    task_id: str,
    task_type: TaskType,
    name: str,
    description: str,
    target: str,
    prompt: str,
    dependencies: tuple[str, ...] = (),
    priority: int = 3,
    seconds: int = 5,
) -> Task:
    return Task(
        id=task_id,
        type=task_type,
        name=name,
        description=description,
        priority=priority,
        estimated_duration_s=seconds,
        input=TaskInput(prompt=prompt, target_path=target, dependencies=dependencies),
    )


def _components(brief: SiteBrief, prompt: str) -> list[Task]:
    components = []
    if brief.forms:
        labels = " and ".join(form.replace("_", " ") for form in brief.forms)
        components.append(
            _task(
                "forms",
                TaskType.CREATE_COMPONENT,
                "Form validation",
                f"Browser-side validation and confirmation for the {labels}.",
                FORMS_PATH,
                prompt,
                ("config",),
                priority=2,
            )
        )
    if brief.kind == "todo":
        components.append(
            _task(
                "todo_app",
                TaskType.CREATE_COMPONENT,
                "Todo list component",
                "Add, complete and remove items, kept in the browser's local storage.",
                TODO_PATH,
                prompt,
                ("config",),
                priority=1,
            )
        )
    if brief.kind == "dashboard":
        components.append(
            _task(
                "charts",
                TaskType.CREATE_COMPONENT,
                "Dashboard charts",
                "Metric cards and a bar chart drawn as SVG from the page's data.",
                DASHBOARD_PATH,
                prompt,
                ("config",),
                priority=1,
            )
        )
    return components


def plan_tasks(brief: SiteBrief, prompt: str) -> tuple[Task, ...]:
    """config -> (styles | components | posts) -> index -> metadata."""
    tasks = [
        _task(
            "config",
            TaskType.SETUP_CONFIG,
            "Site configuration",
            f"Name, kind and sections of the {brief.kind} site for {brief.name}.",
            CONFIG_PATH,
            prompt,
            priority=1,
            seconds=2,
        ),
        _task(
            "styles",
            TaskType.CREATE_FILE,
            "Stylesheet",
            "Responsive layout, colour palette and form styles.",
            STYLES_PATH,
            prompt,
            ("config",),
            priority=2,
        ),
        *_components(brief, prompt),
    ]
    if brief.kind == "blog":
        tasks.append(
            _task(
                "first_post",
                TaskType.CREATE_FILE,
                "First blog post",
                f"A welcome post introducing {brief.name}.",
                POST_PATH,
                prompt,
                ("config", "styles"),
                priority=3,
            )
        )
    page_dependencies = tuple(task.id for task in tasks)
    tasks.append(
        _task(
            "index_page",
            TaskType.CREATE_FILE,
            "Home page",
            f"The {brief.kind} page with its sections, linking the stylesheet and scripts.",
            INDEX_PATH,
            prompt,
            page_dependencies,
            priority=1,
            seconds=10,
        )
    )
    tasks.append(
        _task(
            "page_metadata",
            TaskType.MODIFY_FILE,
            "Page metadata",
            "Add a description and social-sharing tags to the home page.",
            INDEX_PATH,
            prompt,
            ("index_page",),
            priority=4,
            seconds=2,
        )
    )
    return tuple(tasks)
