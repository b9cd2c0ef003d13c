"""The npm builder. The project's files are laid out in a fresh folder that only this build's
sandboxed commands ever get; every dependency source in every manifest and lockfile is checked;
`npm install --ignore-scripts` (npm's code only) reaches the registry through the pipeline's
socket and nothing else; `npm run build` (the generated code) has no network and no shared cache;
the output folder (dist/, build/ or out/) is read back without following any link; then the
folder is deleted."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from sheen_pipeline.build.manifests import check_manifests
from sheen_pipeline.build.published import published
from sheen_pipeline.build.registry import BRIDGE_NAME, SOCKET_NAME, registry_socket
from sheen_pipeline.build.sandbox import WORKSPACE, Bind, CommandOutput, Sandbox
from sheen_pipeline.build.static import BuildError
from sheen_pipeline.config import DEFAULT_NPM_REGISTRY, FileLimits
from sheen_pipeline.fsutil import Tree, read_tree, swap_in, write_new_tree
from sheen_pipeline.models import BUILD_TOOL_FOLDERS, FileArtifact

OUTPUT_FOLDERS = ("dist", "build", "out")
INSTALL = ("npm", "install", "--ignore-scripts", "--include=dev", "--no-audit", "--no-fund")
BRIDGE_PORT = 4873  # on the sandbox's own loopback; the bridge passes it to the registry socket
REGISTRY_INSIDE = "/run/sheen-registry"


@dataclass(frozen=True)
class NpmRegistry:
    """The registry installs come from (SHEEN_NPM_REGISTRY), and where the pipeline keeps the
    tarballs it fetched from it (SHEEN_NPM_CACHE; no sandbox ever writes there)."""

    cache_dir: Path
    url: str = DEFAULT_NPM_REGISTRY


class NpmBuild(NamedTuple):
    """The built site, the commands' output, and the bundles' source maps (`*.map`, kept apart:
    the checks map stack traces with them, and they are deployed only when asked)."""

    files: list[FileArtifact]
    outputs: list[CommandOutput]
    source_maps: dict[str, bytes]


def _build_script(manifest: bytes) -> str | None:
    try:
        package = json.loads(manifest)
    except ValueError:
        return None
    scripts = package.get("scripts") if isinstance(package, dict) else None
    script = scripts.get("build") if isinstance(scripts, dict) else None
    return script if isinstance(script, str) else None


def is_npm_project(workspace: Path) -> bool:
    """A package.json with a build script (in the build's own source folder)."""
    manifest = workspace / "package.json"
    if not manifest.is_file() or manifest.is_symlink():
        return False
    return _build_script(manifest.read_bytes()) is not None


def build_command(manifest: bytes) -> list[str]:
    """`npm run build`; for Vite, with hidden source maps (written, never referenced by the
    bundle), so the checks can map a stack trace back to the source file and line."""
    script = _build_script(manifest) or ""
    vite = script.strip() == "vite build"
    return ["npm", "run", "build", *(["--", "--sourcemap", "hidden"] if vite else [])]


def build_npm(
    workspace: Path,
    dist: Path,
    timeout_s: float,
    limits: FileLimits,
    sandbox: Sandbox,
    registry: NpmRegistry,
) -> NpmBuild:
    source = read_tree(workspace, skip=BUILD_TOOL_FOLDERS).files
    declared = check_manifests(source, registry.url)
    for left in workspace.parent.glob(f"{workspace.name}.sandbox-*"):  # from a killed process
        shutil.rmtree(left)
    scratch = workspace.parent / f"{workspace.name}.sandbox-{uuid.uuid4().hex[:12]}"
    write_new_tree(scratch, source)
    (scratch / ".home").mkdir()
    inside = sandbox.inside(Bind(scratch, WORKSPACE))
    try:
        outputs = []
        if declared:
            outputs.append(run_with_registry(INSTALL, scratch, timeout_s, sandbox, registry))
        cache = "/tmp/.npm" if sandbox.enabled else f"{inside}/.npm"  # nothing shared
        build = build_command(source.get("package.json", b""))
        outputs.append(sandbox.run(build, scratch, timeout_s, env=_npm_env(cache)))
        for name in OUTPUT_FOLDERS:
            site = _site(scratch / name, limits)
            if site is not None:
                if site.left_out:  # links and special files are never deployed: say so
                    outputs.append(CommandOutput(f"left out of {name}/", "\n".join(site.left_out)))
                maps = {path: data for path, data in site.files.items() if path.endswith(".map")}
                public = {p.removeprefix("public/") for p in source if p.startswith("public/")}
                served, withheld = published(
                    {path: data for path, data in site.files.items() if path not in maps}, public
                )
                if withheld:  # dotfiles and tool folders are never deployed: say so
                    outputs.append(CommandOutput(f"withheld from {name}/", "\n".join(withheld)))
                return NpmBuild(swap_in(dist, served), outputs, maps)
    finally:
        shutil.rmtree(scratch)  # descriptor-based: never follows a link the build left
    raise BuildError(f"`npm run build` wrote no index.html into {', '.join(OUTPUT_FOLDERS)}")


def _npm_env(cache: str) -> dict[str, str]:
    return {"npm_config_update_notifier": "false", "npm_config_cache": cache}


def run_with_registry(
    args: Sequence[str], scratch: Path, timeout_s: float, sandbox: Sandbox, registry: NpmRegistry
) -> CommandOutput:
    """Run args (npm install) sandboxed, its only way out being the registry socket (without a
    sandbox, trusted local use, npm asks the registry itself)."""
    env = _npm_env(f"{sandbox.inside(Bind(scratch, WORKSPACE))}/.npm")  # deleted with the folder
    if not sandbox.enabled:
        env["npm_config_registry"] = registry.url
        return sandbox.run(args, scratch, timeout_s, env=env)
    with registry_socket(registry.url, registry.cache_dir) as folder:
        env["npm_config_registry"] = f"http://127.0.0.1:{BRIDGE_PORT}/"
        env["npm_config_replace_registry_host"] = "always"  # tarball URLs go the same way
        bridge = ["node", f"{REGISTRY_INSIDE}/{BRIDGE_NAME}", f"{REGISTRY_INSIDE}/{SOCKET_NAME}"]
        return sandbox.run(
            [*bridge, str(BRIDGE_PORT), *args],
            scratch,
            timeout_s,
            binds=[Bind(folder, REGISTRY_INSIDE)],
            env=env,
            shown=" ".join(args),
        )


def _site(folder: Path, limits: FileLimits) -> Tree | None:
    """The folder's files when it is a real folder (not a link) with an index.html."""
    try:
        tree = read_tree(folder, limits)
    except OSError:
        return None
    return tree if "index.html" in tree.files else None
