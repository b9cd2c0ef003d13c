"""What a process imports for its whole life is frozen out of the garbage collector's way: the
code location when it is imported, and whatever the run forker preloads before it forks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

REPORT = "import gc; print(len(gc.get_objects()), gc.get_freeze_count())"


def _tracked_and_frozen(setup: str) -> tuple[int, int]:
    """In a fresh interpreter: the objects the collector still walks, and those it never will."""
    out = subprocess.run(
        [sys.executable, "-c", f"{setup}\n{REPORT}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    tracked, frozen = out.split()
    return int(tracked), int(frozen)


@pytest.mark.parametrize(
    "setup",
    [
        "import sheen_pipeline.defs",
        "from sheen_pipeline.runs.run_forker import preload; preload(['networkx'])",
    ],
    ids=["the code location", "the run forker's preload"],
)
def test_what_is_imported_is_frozen(setup: str) -> None:
    tracked, frozen = _tracked_and_frozen(setup)
    assert frozen > 100_000  # Dagster and the pipeline
    assert tracked < frozen // 20, (tracked, frozen)  # only what came after
