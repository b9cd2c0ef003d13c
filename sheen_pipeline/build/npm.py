"""The npm builder: `npm install --ignore-scripts` (when there are dependencies), then
`npm run build`, sandboxed; the output folder (dist/ or build/) becomes the dist folder."""

from __future__ import annotations

import json
from pathlib import Path

from sheen_pipeline.build.sandbox import CommandOutput, minimal_env, run_command
from sheen_pipeline.build.static import BuildError
from sheen_pipeline.config import FileLimits
from sheen_pipeline.fsutil import replace_tree
from sheen_pipeline.models import FileArtifact

OUTPUT_FOLDERS = ("dist", "build", "out")


def _package(workspace: Path) -> dict[str, object] | None:
    manifest = workspace / "package.json"
    if not manifest.is_file() or manifest.is_symlink():
        return None
    try:
        package = json.loads(manifest.read_text())
    except ValueError as error:
        raise BuildError(f"package.json is not valid JSON: {error}") from None
    return package if isinstance(package, dict) else None


def is_npm_project(workspace: Path) -> bool:
    package = _package(workspace)
    scripts = package.get("scripts") if package else None
    return isinstance(scripts, dict) and "build" in scripts


def build_npm(
    workspace: Path, dist: Path, cache_dir: Path, timeout_s: float, limits: FileLimits
) -> tuple[list[FileArtifact], list[CommandOutput]]:
    package = _package(workspace) or {}
    env = minimal_env(workspace, cache_dir)
    outputs = []
    if package.get("dependencies") or package.get("devDependencies"):
        install = ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund"]
        outputs.append(run_command(install, workspace, env, timeout_s))
    outputs.append(run_command(["npm", "run", "build"], workspace, env, timeout_s))
    for name in OUTPUT_FOLDERS:
        folder = workspace / name
        if (folder / "index.html").is_file() and not folder.is_symlink():
            return replace_tree(folder, dist, limits), outputs
    raise BuildError(f"`npm run build` wrote no index.html into {', '.join(OUTPUT_FOLDERS)}")
