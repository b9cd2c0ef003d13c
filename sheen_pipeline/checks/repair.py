"""A repair round as a task: what the browser saw go wrong (messages, failing URLs, the console)
goes back to the model with the site's files, and the files it returns replace them."""

from __future__ import annotations

from pathlib import PurePosixPath

from sheen_pipeline.checks.browser import PREVIEW_URL
from sheen_pipeline.checks.results import CheckReport
from sheen_pipeline.models import Task, TaskInput, TaskType

ENTRY_PAGE = "index.html"
MAX_DETAIL_ITEMS = 20
MAX_FAILURE_CHARS = (
    4000  # of the failures listed to a repair round (a build's estimate counts on it)
)
MAX_REPAIR_IMAGES = 4  # screenshots shown to a repair round, likewise


def failure_lines(report: CheckReport, preview_url: str = PREVIEW_URL) -> list[str]:
    """One line per failed blocking check, with what it found; URLs as the preview's own (the
    browser checked the files at a stand-in origin)."""
    lines = []
    for result in report.blocking_failures:
        details = [
            f"{key}: {', '.join(map(str, value[:MAX_DETAIL_ITEMS]))}"
            for key, value in result.details.items()
            if isinstance(value, list) and value
        ]
        line = f"{result.name}: {result.message}" + (f" ({'; '.join(details)})" if details else "")
        lines.append(line.replace(PREVIEW_URL, preview_url))
    return lines


# Where a framework app's faults usually are, when no failure names a file.
APP_SOURCES = ("src/App.jsx", "src/App.tsx", "src/App.vue", "src/main.jsx", "src/main.tsx")


def repair_target(failures: list[str], sources: list[str]) -> str:
    """The file the repair modifies: one a failure names (its path or file name), else a
    framework app's main component, else the entry page."""
    said = "\n".join(failures)
    named = [p for p in sources if p in said or PurePosixPath(p).name in said]
    if named:
        return named[0]
    return next((p for p in APP_SOURCES if p in sources), ENTRY_PAGE)


def repair_task(round_number: int, failures: list[str], sources: list[str]) -> Task:
    """A task that modifies the implicated file (and may rewrite the other files it was shown)."""
    listed = "\n".join(f"- {line}" for line in failures)[:MAX_FAILURE_CHARS]
    return Task(
        id=f"repair_{round_number}",
        type=TaskType.MODIFY_FILE,
        name=f"repair round {round_number}",
        description="Fix the site so that it passes the browser checks it failed.",
        priority=1,
        input=TaskInput(
            prompt=(
                "The deployed site was opened in a real browser and failed these checks:\n"
                f"{listed}\n"
                "Return corrected versions of the files that cause these failures (the page, and "
                "any script or stylesheet it loads). Keep everything else as it is."
            ),
            target_path=repair_target(failures, sources),
        ),
    )
