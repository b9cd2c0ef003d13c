"""What the planner of a change is shown of its base: the file tree, the contents of the files
it needs within a budget, and the prompts that led to the base."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import PurePosixPath

from sheen_pipeline.models import FileArtifact
from sheen_pipeline.providers.base import BaseVersion
from sheen_pipeline.store.builds import BuildStore, UnknownBuild
from sheen_pipeline.store.files import BuildFiles

CONTENT_BUDGET_CHARS = 60_000  # about 20k tokens of file contents in a planning prompt
TEXT_SUFFIXES = frozenset(
    {".html", ".css", ".js", ".jsx", ".ts", ".tsx", ".json", ".svg", ".txt", ".md", ".mjs"}
)
PROMPT_LINE = 4  # prompts of the base's line of versions shown, newest last


def source_digest(artifacts: Sequence[FileArtifact]) -> str:
    """One hash for a version's source files: equal digests, equal files."""
    listing = sorted((a.path, a.sha256) for a in artifacts)
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def _named_in(prompt: str, path: str) -> bool:
    lowered = prompt.lower()
    return path.lower() in lowered or PurePosixPath(path).name.lower() in lowered


def shown_files(
    artifacts: Sequence[FileArtifact], prompt: str, budget: int = CONTENT_BUDGET_CHARS
) -> list[FileArtifact]:
    """All text files of a site that fits the budget; otherwise the files the request names
    first, then the smallest, while they fit."""
    text = [a for a in artifacts if PurePosixPath(a.path).suffix in TEXT_SUFFIXES]
    if sum(a.size for a in text) <= budget:
        return text
    ranked = sorted(text, key=lambda a: (not _named_in(prompt, a.path), a.size, a.path))
    shown, used = [], 0
    for artifact in ranked:
        if used + artifact.size <= budget:
            shown.append(artifact)
            used += artifact.size
    return shown


def prompt_line(store: BuildStore, base_id: str) -> tuple[str, ...]:
    """The prompts of the base and the versions it came from, oldest first."""
    prompts: list[str] = []
    build_id: str | None = base_id
    while build_id is not None and len(prompts) < PROMPT_LINE:
        try:
            request = store.get_build(build_id).request
        except UnknownBuild:
            break
        prompts.append(request.prompt)
        build_id = request.base_build_id
    return tuple(reversed(prompts))


def load_base(
    base_id: str,
    artifacts: Sequence[FileArtifact],
    prompt: str,
    files: BuildFiles,
    store: BuildStore,
) -> BaseVersion:
    """The base as the planner sees it, from its source files' manifest (`artifacts`)."""
    contents = {
        a.path: files.read(a).decode("utf-8", errors="replace")
        for a in shown_files(artifacts, prompt)
    }
    return BaseVersion(
        build_id=base_id,
        tree={a.path: a.size for a in artifacts},
        contents=contents,
        prompts=prompt_line(store, base_id),
    )
