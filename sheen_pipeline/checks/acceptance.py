"""The plan's acceptance steps, run in the browser on the preview as a person would use it: each
step's outcome is recorded, the first failing one is photographed, and the check fails naming it.
Steps never leave the preview's origin: a visit is a path of the site, and every request to
anywhere else is refused by the browser check's routing anyway."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from sheen_pipeline.checks.results import CheckResult
from sheen_pipeline.models import AcceptanceStep

STEP_TIMEOUT_MS = 3000
FAILED_STEP_SHOT = "acceptance-failed"
_COUNT = re.compile(r"(>=)?\s*(\d+)")


class StepFailed(AssertionError):
    """A step that did not do, or find, what it says."""


def run_acceptance(
    page: Any, steps: Sequence[AcceptanceStep], base_url: str, screenshots: Path
) -> CheckResult:
    """Every step in order; None (not run) when the plan declares none."""
    if not steps:
        return CheckResult.not_run("acceptance", "the plan declares no acceptance steps")
    done: list[str] = []
    for number, step in enumerate(steps, start=1):
        try:
            _run(page, step, base_url)
        except Exception as error:  # Playwright's errors and timeouts, and StepFailed
            page.screenshot(path=str(screenshots / f"{FAILED_STEP_SHOT}.png"))
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            return CheckResult(
                "acceptance",
                False,
                f"step {number} of {len(steps)} failed: {step.describe()}: {reason}",
                {"passed_steps": done, "failed_step": [step.describe()]},
            )
        done.append(step.describe())
    return CheckResult(
        "acceptance", True, f"{len(steps)} acceptance steps passed", {"passed_steps": done}
    )


def _run(page: Any, step: AcceptanceStep, base_url: str) -> None:
    action, target, value = step.action, step.target, step.value
    if action == "visit":
        url = urljoin(base_url, target or "/")
        if urlsplit(url).netloc != urlsplit(base_url).netloc or urlsplit(url).scheme != "http":
            raise StepFailed(f"{target!r} is not a path of the preview")
        page.goto(url, wait_until="load")
    elif action == "click":
        _clickable(page, target).click(timeout=STEP_TIMEOUT_MS)
    elif action == "fill":
        field = page.get_by_label(target).or_(page.get_by_placeholder(target)).first
        field.fill(value, timeout=STEP_TIMEOUT_MS)
    elif action == "press":
        page.keyboard.press(value or target or "Enter")
    elif action == "expect_text":
        page.get_by_text(value or target).first.wait_for(state="visible", timeout=STEP_TIMEOUT_MS)
    elif action == "expect_no_text":
        page.get_by_text(value or target).first.wait_for(state="hidden", timeout=STEP_TIMEOUT_MS)
    elif action == "expect_count":
        _expect_count(page, target, value)
    elif action == "expect_url":
        path = urlsplit(page.url).path
        if path != urlsplit(urljoin(base_url, target)).path:
            raise StepFailed(f"the page is at {path}")


def _clickable(page: Any, text: str) -> Any:
    """A button by its text first, then a link, then any element with the text (a nav link
    that names a section must not win over the form's button of the same name)."""
    for locator in (
        page.get_by_role("button", name=text),
        page.get_by_role("link", name=text),
        page.get_by_text(text),
    ):
        if locator.count():
            return locator.first
    raise StepFailed(f"nothing to click says {text!r}")


def _expect_count(page: Any, selector: str, wanted: str) -> None:
    match = _COUNT.fullmatch(wanted.strip())
    if match is None:
        raise StepFailed(f'{wanted!r} is not a count ("3" or ">=1")')
    at_least, number = bool(match.group(1)), int(match.group(2))
    found = page.locator(selector).count()
    if found < number if at_least else found != number:
        raise StepFailed(f"{found} elements match {selector!r}, expected {wanted}")
