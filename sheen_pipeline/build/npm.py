"""The npm builder: `npm install --ignore-scripts` (when there are dependencies; the only step
with network, running npm's code only), then `npm run build` (the generated code, without
network), both sandboxed; the output folder (dist/, build/ or out/) becomes the dist folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sheen_pipeline.build.sandbox import CommandOutput, Sandbox
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


# What a dependency may be: a version or range from the registry, never a URL, path, git
# repository or alias (which would reach other hosts, or local services, during the install).
REGISTRY_VERSION = re.compile(r"[0-9A-Za-z.*^~<>=| +\-]{1,64}")


def _check_dependencies(package: dict[str, object], workspace: Path) -> bool:
    """True when the project declares dependencies to install; BuildError for any that is
    not a registry version, or for a generated .npmrc (the registry is the pipeline's)."""
    if (workspace / ".npmrc").exists():
        raise BuildError("a generated .npmrc is not allowed: npm's settings are the pipeline's")
    declared = False
    for field in ("dependencies", "devDependencies", "optionalDependencies"):
        entries = package.get(field) or {}
        if not isinstance(entries, dict):
            raise BuildError(f"package.json {field} must be an object")
        for name, spec in entries.items():
            if not isinstance(spec, str) or not REGISTRY_VERSION.fullmatch(spec):
                raise BuildError(
                    f"package.json {field} {name!r}: only registry versions are allowed, "
                    f"got {spec!r}"
                )
            declared = True
    return declared


def build_npm(
    workspace: Path,
    dist: Path,
    cache_dir: Path,
    timeout_s: float,
    limits: FileLimits,
    sandbox: Sandbox,
) -> tuple[list[FileArtifact], list[CommandOutput]]:
    package = _package(workspace) or {}
    outputs = []
    if _check_dependencies(package, workspace):
        install = ["npm", "install", "--ignore-scripts", "--include=dev", "--prefer-offline"]
        install += ["--no-audit", "--no-fund"]  # a warm cache answers without the registry
        outputs.append(sandbox.run(install, workspace, cache_dir, timeout_s, network=True))
    outputs.append(sandbox.run(["npm", "run", "build"], workspace, cache_dir, timeout_s))
    for name in OUTPUT_FOLDERS:
        folder = workspace / name
        if (folder / "index.html").is_file() and not folder.is_symlink():
            return replace_tree(folder, dist, limits), outputs
    raise BuildError(f"`npm run build` wrote no index.html into {', '.join(OUTPUT_FOLDERS)}")
