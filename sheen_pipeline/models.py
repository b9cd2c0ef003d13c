"""The pipeline's data: what a user asks for, the plan made of it, and what each task produced.
Past 350 lines because these validated models refer to one another; one module keeps each
rule (ids, paths, limits) next to the field it guards."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Annotated, Literal, get_args, get_origin

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from sheen_pipeline.redaction import redact_credentials

MAX_PROMPT_CHARS = 2000
# The largest valid request body: every prompt character sent as a JSON surrogate-pair escape
# (12 bytes, an emoji), plus room for the other fields.
MAX_REQUEST_BODY_BYTES = MAX_PROMPT_CHARS * len("\\ud83d\\ude00") + 4096
SAFE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"

SAFE_ID_RULE = "may contain only letters, digits, '_' and '-' (1-64 characters)"

SafeId = Annotated[str, StringConstraints(pattern=SAFE_ID_PATTERN)]
LATEST, PRODUCTION = "latest", "production"  # the bases a request may name instead of a build id


class TaskType(StrEnum):
    CREATE_FILE = "create_file"
    MODIFY_FILE = "modify_file"
    CREATE_COMPONENT = "create_component"
    SETUP_CONFIG = "setup_config"
    INSTALL_DEPS = "install_deps"
    DELETE_FILE = "delete_file"  # a change removes a file of its base; no model call


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but \t and \n


class BuildRequest(_Frozen):
    """A user's request in plain words, validated before anything is spent on it. Its fields
    are the one definition of a request: the Launchpad config, the CLI's arguments, what the
    ingress accepts and the build_requests row are derived from them."""

    prompt: str = Field(
        description=f"What to build, in plain words (at most {MAX_PROMPT_CHARS} characters)."
    )
    project_id: SafeId = Field(
        default="default", description="The project it belongs to: letters, digits, '_', '-'."
    )
    user_id: SafeId = Field(
        default="anonymous", description="Who asked for it: letters, digits, '_', '-'."
    )
    framework: Literal["static", "react"] | None = Field(
        default=None,
        description="Leave empty or 'static' for a static site; 'react' for a React + Vite app.",
    )
    base_build_id: SafeId | None = Field(
        default=None,
        validation_alias=AliasChoices("base_build_id", "base"),
        description=(
            "Change an app instead of starting anew: a succeeded build of the same project, "
            f"'{LATEST}' (its newest) or '{PRODUCTION}' (the one in production); resolved to "
            "a build id when the request is accepted."
        ),
    )

    @classmethod
    def choices(cls, name: str) -> tuple[str, ...]:
        """The values a field is limited to (framework), or () when it takes any text."""
        annotation = cls.model_fields[name].annotation
        for candidate in (annotation, *get_args(annotation)):
            if get_origin(candidate) is Literal:
                return tuple(str(value) for value in get_args(candidate))
        return ()

    @field_validator("prompt", mode="before")
    @classmethod
    def _trim_prompt(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        trimmed = value.replace("\r\n", "\n").strip()  # a browser's textarea sends CRLF
        if not trimmed:
            raise ValueError("must not be empty")
        if len(trimmed) > MAX_PROMPT_CHARS:
            raise ValueError(f"must be at most {MAX_PROMPT_CHARS} characters, got {len(trimmed)}")
        control = _CONTROL_CHARACTER.search(trimmed)
        if control is not None:
            raise ValueError(
                f"must not contain control characters (U+{ord(control.group()):04X} at position "
                f"{control.start()}); only newlines and tabs are allowed"
            )
        return redact_credentials(trimmed)  # nothing downstream ever stores a typed-in key


class TaskInput(_Frozen):
    prompt: str
    context: str = ""
    target_path: str
    dependencies: tuple[SafeId, ...] = ()


class Task(_Frozen):
    """One unit of work; priority 1 is the most important, 5 the least."""

    id: SafeId
    type: TaskType
    name: str
    description: str
    priority: int = Field(default=3, ge=1, le=5)
    estimated_duration_s: int = Field(default=10, ge=0)
    input: TaskInput


class RecoveryStep(_Frozen):
    """One rung of the cycle-recovery ladder that was applied to a plan."""

    rung: Literal["A", "B", "C", "D", "E"]
    action: str
    detail: str


class TokenUsage(_Frozen):
    """Tokens one or more provider calls used. Cost is exact (Decimal), so per-task and per-build
    totals add up to the cent; it is None when a model's price is unknown."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: Decimal | None = Decimal(0)
    calls: int = 0  # paid calls these tokens came from

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )

    def __add__(self, other: TokenUsage) -> TokenUsage:
        cost = (
            None
            if self.cost_usd is None or other.cost_usd is None
            else self.cost_usd + other.cost_usd
        )
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cost_usd=cost,
            calls=self.calls + other.calls,
        )


AcceptanceAction = Literal[
    "visit", "click", "fill", "press", "expect_text", "expect_no_text", "expect_count", "expect_url"
]


class AcceptanceStep(_Frozen):
    """One step of using the preview as a person would, in a small vocabulary the browser
    checks run: visit a path of the site; click a button or link by its text; fill a field (by
    its label or placeholder) with value; press a key (value); expect a text to be visible (or
    not); expect `value` elements matching a CSS selector (\"3\" or \">=1\"); expect the URL's
    path."""

    action: AcceptanceAction
    target: str = Field(default="", max_length=200)
    value: str = Field(default="", max_length=200)

    def describe(self) -> str:
        return " ".join(
            part
            for part in (
                self.action,
                repr(self.target) if self.target else "",
                repr(self.value) if self.value else "",
            )
            if part
        )


MAX_ACCEPTANCE_STEPS = 12


class Plan(_Frozen):
    build_id: SafeId
    request: BuildRequest
    summary: str
    tasks: tuple[Task, ...]
    recovery: tuple[RecoveryStep, ...] = ()
    provider: str = "offline"
    model: str = "offline"
    planning_usage: TokenUsage = TokenUsage()
    planning_heals: int = 0
    base_digest: str | None = None  # a change's base: the digest of its source files
    acceptance: tuple[AcceptanceStep, ...] = Field(default=(), max_length=MAX_ACCEPTANCE_STEPS)

    @property
    def base_build_id(self) -> str | None:
        """The build this one changes (None for a build from scratch)."""
        return self.request.base_build_id

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(f"plan {self.build_id} has no task {task_id!r}")


class FileArtifact(_Frozen):
    path: str
    sha256: str
    size: int

    @classmethod
    def of(cls, path: str, data: bytes) -> FileArtifact:
        return cls(path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


class Deployed(_Frozen):
    """One build's deploy: its preview URL, the target's version of it, and what the upload
    sent (uploaded) or found already there (reused)."""

    target: str
    url: str
    files: tuple[FileArtifact, ...] = ()
    version_id: str | None = None
    uploaded_files: int = 0
    reused_files: int = 0
    uploaded_bytes: int = 0
    reused_bytes: int = 0


class TaskResult(_Frozen):
    task_id: str
    files: tuple[FileArtifact, ...]
    usage: TokenUsage
    heals: int = 0
    cache_hit: bool = False


RESERVED_TASK_IDS = frozenset({"build_site", "deploy_preview", "check_preview"})
# The build job's own steps, repeated per repair round (repair_1, build_site_1, ...).
RESERVED_TASK_ID = re.compile(r"(repair|build_site|deploy_preview|check_preview)_\d+")


class PlanInvalid(ValueError):
    """The plan refers to tasks that do not exist or names a task twice."""


def check_tasks(tasks: Sequence[Task]) -> None:
    """Raise PlanInvalid naming every empty plan, duplicate id and unknown dependency."""
    if not tasks:
        raise PlanInvalid("plan has no tasks")
    counts = Counter(task.id for task in tasks)
    problems = [f"duplicate task id {task_id!r}" for task_id, n in counts.items() if n > 1]
    problems += [
        f"task id {t.id!r} is reserved"
        for t in tasks
        if t.id in RESERVED_TASK_IDS or RESERVED_TASK_ID.fullmatch(t.id)
    ]
    known = {task.id for task in tasks}
    problems += [
        f"task {task.id!r} depends on unknown task {dep!r}"
        for task in tasks
        for dep in task.input.dependencies
        if dep not in known
    ]
    if problems:
        raise PlanInvalid("; ".join(problems))


_DRIVE = re.compile(r"^[A-Za-z]:")
# Written by build tools, never by tasks: not generated files, never deployed.
BUILD_TOOL_FOLDERS = frozenset({"node_modules", ".home", ".npm", ".cache"})


class UnsafePath(ValueError):
    """A generated path that would land outside the workspace, or is otherwise refused."""


def check_relative_path(path: str) -> PurePosixPath:
    """Return the path as a clean relative POSIX path, or raise UnsafePath saying why."""
    if not path or not path.strip():
        raise UnsafePath("path is empty")
    if "\x00" in path:
        raise UnsafePath(f"path {path!r} contains a NUL byte")
    if "\\" in path:
        raise UnsafePath(f"path {path!r} contains a backslash")
    if _DRIVE.match(path):
        raise UnsafePath(f"path {path!r} names a drive")
    pure = PurePosixPath(path)
    if pure.is_absolute():
        raise UnsafePath(f"path {path!r} is absolute")
    if ".." in pure.parts:
        raise UnsafePath(f"path {path!r} climbs out with '..'")
    clean = PurePosixPath(*(part for part in pure.parts if part != "."))
    if not clean.parts:
        raise UnsafePath(f"path {path!r} names the workspace itself")
    if clean.parts[0] in BUILD_TOOL_FOLDERS:
        raise UnsafePath(f"path {path!r} is inside {clean.parts[0]}/, which build tools own")
    return clean


def new_build_id() -> str:
    return "b" + secrets.token_hex(16)  # 128 bits: preview URLs are public, ids unguessable


def describe_validation_error(error: ValidationError) -> str:
    """A one-line message naming each bad field, for users rather than developers."""
    parts = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "request"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "string_pattern_mismatch":
            message = SAFE_ID_RULE
        elif item["type"] == "extra_forbidden":
            message = "unknown field"
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


def parse_build_request(**fields: object) -> BuildRequest:
    """Validate a request, raising InvalidRequest with a readable message naming the field."""
    try:
        return BuildRequest.model_validate(fields)
    except ValidationError as error:
        raise InvalidRequest(describe_validation_error(error)) from None


def parse_build_id(value: str) -> str:
    if not re.fullmatch(SAFE_ID_PATTERN, value):
        raise InvalidRequest(f"build_id: {SAFE_ID_RULE}")
    return value


class InvalidRequest(ValueError):
    """A build request that cannot be accepted; the message names the field."""
