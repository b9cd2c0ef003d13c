"""Benchmark: the offline React + Vite app built in the sandbox (`npm install` and `vite build`,
as a build's build_site step runs them), on a cold npm cache and then on a warm one, plus the
browser checks of the result.

    .venv/bin/python -m tests.bench.vite
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from sheen_pipeline.build.npm import NpmRegistry, build_npm
from sheen_pipeline.build.sandbox import Sandbox
from sheen_pipeline.checks.browser import check_preview
from sheen_pipeline.config import FileLimits, SandboxSettings
from sheen_pipeline.fsutil import read_tree
from sheen_pipeline.providers.offline import react
from sheen_pipeline.providers.offline.brief import read_brief

PROMPT = "a landing page for Blue Fern Coffee in Portland, with a signup form"


def write_app(workspace: Path) -> None:
    brief = read_brief(PROMPT)
    for path, render in react.RENDERERS.items():
        target = workspace / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(brief))


def timed_build(root: Path, name: str, cache: Path) -> float:
    workspace = root / name
    workspace.mkdir()
    write_app(workspace)
    started = time.monotonic()
    build_npm(
        workspace,
        root / f"{name}-dist",
        600,
        FileLimits(),
        Sandbox(SandboxSettings()),
        NpmRegistry(cache),
    )
    return time.monotonic() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        cache = root / "npm-cache"
        cold = timed_build(root, "cold", cache)
        warm = timed_build(root, "warm", cache)
        started = time.monotonic()
        site = read_tree(root / "warm-dist").files
        report = check_preview(site, 1, root / "shots", Sandbox(SandboxSettings()))
        checks = time.monotonic() - started
        passed = sum(bool(r.passed) for r in report.results)
    print("| React + Vite app, sandboxed | seconds |")
    print("|---|---|")
    print(f"| npm install + vite build, cold npm cache | {cold:.1f} |")
    print(f"| npm install + vite build, warm npm cache | {warm:.1f} |")
    print(f"| browser checks ({passed}/{len(report.results)} passed) | {checks:.1f} |")
    print(
        json.dumps(
            {
                "bench": "vite",
                "cold_s": round(cold, 2),
                "warm_s": round(warm, 2),
                "checks_s": round(checks, 2),
                "checks_passed": passed,
            }
        )
    )


if __name__ == "__main__":
    main()
