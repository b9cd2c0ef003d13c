"""What the browser checks found: one result per check, blocking or a warning."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Blocking checks decide whether a build succeeds and can be promoted; the rest are warnings.
BLOCKING = ("page_loads", "renders_content", "no_errors", "assets_load", "acceptance")
WARNINGS = (
    "title_and_heading",
    "mobile_overflow",
    "forms_validate",
    "accessibility",
    "own_origin_only",
)
CHECKS = (*BLOCKING, *WARNINGS)
SCREENSHOTS = ("desktop", "mobile")  # each saved as <name>.png in the build's screenshot folder
DESCRIPTIONS = {
    "page_loads": "The preview answers HTTP 200.",
    "renders_content": "The first screen shows something a person can see: text or controls.",
    "no_errors": "No uncaught exception and no console error while the page loads and settles "
    "(until the network is idle plus the settle window) or while it is used by the checks.",
    "assets_load": "Every local asset the page loads and every local link it has answer 200.",
    "acceptance": "The plan's acceptance steps (visit, click, fill, press, expect) pass in a browser.",
    "title_and_heading": "The page has a title and a visible main heading (h1).",
    "mobile_overflow": "Nothing overflows sideways at a 390 px wide (phone) viewport.",
    "forms_validate": "Every form asked for exists and refuses an empty submit with a visible message.",
    "accessibility": "axe-core finds no serious or critical accessibility violation.",
    "own_origin_only": "The page requests nothing outside its own origin (such requests are refused).",
}


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool | None  # None: not run (no browser, no axe-core)
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        return self.name in BLOCKING

    @classmethod
    def not_run(cls, name: str, why: str) -> CheckResult:
        return cls(name, None, why)

    def line(self) -> str:
        state = {True: "passed", False: "FAILED", None: "not run"}[self.passed]
        kind = "blocking" if self.blocking else "warning"
        return f"check {self.name} ({kind}) {state}: {self.message}"


@dataclass(frozen=True)
class CheckReport:
    results: tuple[CheckResult, ...]
    screenshots: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def not_run(cls, why: str) -> CheckReport:
        return cls(tuple(CheckResult.not_run(name, why) for name in CHECKS))

    @property
    def blocking_failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.blocking and r.passed is False]
