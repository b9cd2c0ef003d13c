"""A suite as data (`evals/<suite>.yaml`): cases, each a request and the steps a person would take
to check the app does what was asked, in the vocabulary of the preview checks' acceptance steps.
The steps are written by people and never shown to the model.

    cases:
      - id: coffee-signup
        prompt: a landing page for Blue Fern Coffee with a signup form
        framework: static          # or react; static when left out
        steps:
          - visit: /
          - fill: {target: Email, value: ada@example.com}
          - click: Sign up
          - expect_text: Thank you!

A step is one action and its target (`click: Sign up`), or its target and value as a mapping."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import yaml  # type: ignore[import-untyped]
from pydantic import ValidationError

from sheen_pipeline.models import (
    MAX_ACCEPTANCE_STEPS,
    AcceptanceAction,
    AcceptanceStep,
    BuildRequest,
    InvalidRequest,
    parse_build_request,
)

ACTIONS = get_args(AcceptanceAction)
CASE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
LINE = "__line__"


class SuiteError(ValueError):
    """The suite file is not valid; the message names the file, the case and the line."""


@dataclass(frozen=True)
class EvalCase:
    id: str
    request: BuildRequest
    steps: tuple[AcceptanceStep, ...]


@dataclass(frozen=True)
class Suite:
    name: str
    cases: tuple[EvalCase, ...]

    def only(self, ids: list[str]) -> Suite:
        """The suite cut to the cases named (in the suite's order); an unknown id is refused."""
        unknown = sorted(set(ids) - {case.id for case in self.cases})
        if unknown:
            raise SuiteError(f"suite {self.name} has no case {', '.join(unknown)}")
        return Suite(self.name, tuple(c for c in self.cases if c.id in ids))


def suite_path(name_or_path: str, folder: Path) -> Path:
    """A suite by name (`core`: folder/core.yaml) or by its file's path."""
    given = Path(name_or_path)
    return given if given.suffix in (".yaml", ".yml") else folder / f"{name_or_path}.yaml"


def load_suite(path: Path) -> Suite:
    """The suite in path, every case and step checked; SuiteError naming where it is wrong."""
    if not path.is_file():
        raise SuiteError(f"no suite file {path}")
    try:
        document = yaml.load(path.read_text(), Loader=_WithLines)  # safe: SafeLoader's
    except yaml.YAMLError as error:
        raise SuiteError(f"{path}: not YAML: {error}") from None
    raw_cases = document.get("cases") if isinstance(document, dict) else None
    if not isinstance(raw_cases, list) or not raw_cases:
        raise SuiteError(f"{path}: needs a list of `cases`")
    cases = [_case(path, raw) for raw in raw_cases]
    ids = [case.id for case in cases]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise SuiteError(f"{path}: case ids must be unique: {', '.join(repeated)}")
    return Suite(path.stem, tuple(cases))


def _case(path: Path, raw: Any) -> EvalCase:
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: each case is a mapping with id, prompt and steps")
    where = f"{path}: case {raw.get('id')!r}, line {raw[LINE]}"
    case_id = raw.get("id")
    if not isinstance(case_id, str) or not CASE_ID.fullmatch(case_id):
        raise SuiteError(f"{where}: id must be lowercase letters, digits and '-'")
    unknown = set(raw) - {"id", "prompt", "framework", "steps", LINE}
    if unknown:
        raise SuiteError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    try:
        request = parse_build_request(prompt=raw.get("prompt"), framework=raw.get("framework"))
    except InvalidRequest as error:
        raise SuiteError(f"{where}: {error}") from None
    steps = raw.get("steps")
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_ACCEPTANCE_STEPS:
        raise SuiteError(f"{where}: needs 1 to {MAX_ACCEPTANCE_STEPS} steps")
    return EvalCase(case_id, request, tuple(_step(path, case_id, step) for step in steps))


def _step(path: Path, case_id: str, raw: Any) -> AcceptanceStep:
    line = raw.get(LINE, "?") if isinstance(raw, dict) else "?"
    where = f"{path}: case {case_id!r}, line {line}"
    fields = {k: v for k, v in raw.items() if k != LINE} if isinstance(raw, dict) else {}
    if len(fields) != 1:
        raise SuiteError(f"{where}: a step is one action, such as `click: Sign up`")
    ((action, argument),) = fields.items()
    if action not in ACTIONS:
        raise SuiteError(f"{where}: unknown step kind {action!r}; one of {', '.join(ACTIONS)}")
    if isinstance(argument, dict):
        given = {k: str(v) for k, v in argument.items() if k != LINE}
    else:
        given = {"target": "" if argument is None else str(argument)}
    try:
        return AcceptanceStep.model_validate({"action": action, **given})
    except ValidationError as error:
        raise SuiteError(f"{where}: {action}: {error.errors()[0]['msg']}") from None


class _WithLines(yaml.SafeLoader):  # type: ignore[misc]
    """Safe YAML whose mappings carry the line they start on, for error messages."""


def _mapping_with_line(loader: Any, node: Any) -> dict[str, Any]:
    mapping: dict[str, Any] = loader.construct_mapping(node, deep=True)
    mapping[LINE] = node.start_mark.line + 1
    return mapping


_WithLines.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)
