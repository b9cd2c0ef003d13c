"""Every place npm reads a dependency's source from, checked before anything is installed: each
`package.json` in the project (workspace packages too) with its `dependencies`,
`devDependencies`, `optionalDependencies`, `peerDependencies` and `overrides`, and each lockfile
(`package-lock.json`, `npm-shrinkwrap.json`) with what it `resolved`. Only registry versions
from the pipeline's registry pass: no URL, path, git repository or alias, and no `.npmrc`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath

from sheen_pipeline.build.static import BuildError

# A version, range or dist-tag from the registry; never a URL, path, git repository or alias.
REGISTRY_VERSION = re.compile(r"[0-9A-Za-z.*^~<>=| +\-]{1,64}")
OVERRIDE_REFERENCE = re.compile(r"\$[A-Za-z0-9@/._\-]{1,214}")  # "$react": the root's own spec
DEPENDENCY_FIELDS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
LOCKFILES = ("package-lock.json", "npm-shrinkwrap.json")


def check_manifests(files: Mapping[str, bytes], registry: str) -> bool:
    """True when the root package.json declares dependencies to install; BuildError naming the
    file and entry for any source that is not the registry."""
    declared = False
    for path, data in files.items():
        name = PurePosixPath(path).name
        if name == ".npmrc":
            raise BuildError(f"a generated .npmrc is not allowed ({path}): npm's settings are ours")
        if name == "package.json":
            has = _check_package(path, _json(path, data))
            declared = declared or (has and path == "package.json")
        elif name in LOCKFILES:
            _check_lockfile(path, _json(path, data), registry)
    return declared


def _json(path: str, data: bytes) -> dict[str, object]:
    try:
        document = json.loads(data)
    except ValueError as error:
        raise BuildError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise BuildError(f"{path} must hold a JSON object")
    return document


def _check_package(path: str, package: Mapping[str, object]) -> bool:
    declared = False
    for field in DEPENDENCY_FIELDS:
        for name, spec in _entries(path, field, package.get(field)):
            _registry_version(path, f"{field} {name!r}", spec)
            declared = True
    for where, spec in _overrides(path, package.get("overrides"), "overrides"):
        if not (isinstance(spec, str) and OVERRIDE_REFERENCE.fullmatch(spec)):
            _registry_version(path, where, spec)
    return declared


def _entries(path: str, field: str, value: object) -> Iterator[tuple[str, object]]:
    if value is None:
        return
    if not isinstance(value, dict):
        raise BuildError(f"{path} {field} must be an object")
    yield from value.items()


def _overrides(path: str, value: object, where: str) -> Iterator[tuple[str, object]]:
    """Each override's spec, however deep (an object's "." key is its own spec)."""
    for key, spec in _entries(path, where, value):
        if isinstance(spec, dict):
            yield from _overrides(path, spec, f"{where} {key!r}")
        else:
            yield f"{where} {key!r}", spec


def _registry_version(path: str, where: str, spec: object) -> None:
    if not isinstance(spec, str) or not REGISTRY_VERSION.fullmatch(spec):
        raise BuildError(f"{path} {where}: only registry versions are allowed, got {spec!r}")


def _check_lockfile(path: str, lock: Mapping[str, object], registry: str) -> None:
    """Lockfile v2/v3 `packages` and v1 `dependencies` (nested): every `resolved` is on the
    registry (or a link to a folder of the project), every `version` a version."""
    for where, entry in _lock_entries(path, lock):
        _check_package(path, entry)  # what each package (the root too) says it depends on
        if where == "packages ''":
            continue
        resolved, version = entry.get("resolved"), entry.get("version")
        if entry.get("link") is True:
            if not (isinstance(resolved, str) and _inside_project(resolved)):
                raise BuildError(f"{path} {where}: a link must point inside the project")
            continue
        if resolved is not None and not (
            isinstance(resolved, str) and resolved.startswith(registry)
        ):
            raise BuildError(
                f"{path} {where}: resolved must be on the registry ({registry}), got {resolved!r}"
            )
        if version is not None:
            _registry_version(path, f"{where} version", version)


def _lock_entries(path: str, lock: Mapping[str, object]) -> Iterator[tuple[str, dict[str, object]]]:
    for key, entry in _entries(path, "packages", lock.get("packages")):
        yield f"packages {key!r}", _object(path, key, entry)
    yield from _v1_entries(path, lock.get("dependencies"))


def _v1_entries(path: str, value: object) -> Iterator[tuple[str, dict[str, object]]]:
    for key, entry in _entries(path, "dependencies", value):
        entry = _object(path, key, entry)
        yield f"dependencies {key!r}", entry
        yield from _v1_entries(path, entry.get("dependencies"))


def _object(path: str, key: str, entry: object) -> dict[str, object]:
    if not isinstance(entry, dict):
        raise BuildError(f"{path} entry {key!r} must be an object")
    return entry


def _inside_project(relative: str) -> bool:
    clean = PurePosixPath(relative)
    return not clean.is_absolute() and ".." not in clean.parts and ":" not in relative
