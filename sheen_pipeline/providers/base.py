"""The interface every LLM provider implements; the planner and task ops depend only on this."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from sheen_pipeline.models import AcceptanceStep, BuildRequest, Plan, Task, TokenUsage


@dataclass(frozen=True)
class PlanDraft:
    """The tasks a provider proposed, before cycle recovery; heals counts repairs of its output."""

    summary: str
    tasks: tuple[Task, ...]
    usage: TokenUsage
    heals: int = 0
    acceptance: tuple[AcceptanceStep, ...] = ()  # how a person would check the site works


@dataclass(frozen=True)
class BaseVersion:
    """What a change is planned from: the base build's file tree (path -> size), the contents
    of the files shown (all of a small site; within a budget, the ones the request names, for a
    larger one), and the prompts of its line of versions, oldest first."""

    build_id: str
    tree: Mapping[str, int]
    contents: Mapping[str, str]
    prompts: tuple[str, ...]


@dataclass(frozen=True)
class CallBound:
    """One call at its largest: its prompt's characters and the images it shows."""

    chars: int
    images: int = 0


@dataclass(frozen=True)
class GeneratedFiles:
    files: Mapping[str, str]
    usage: TokenUsage
    heals: int = 0


@dataclass(frozen=True)
class DependencyRepair:
    """New dependency lists, by task id, proposed to break cycles."""

    dependencies: Mapping[str, tuple[str, ...]]
    usage: TokenUsage


class ProviderError(RuntimeError):
    """A provider call failed. The message is safe to show: it never contains a key.
    `retryable` says whether the same call may succeed later (rate limit, overload, timeout);
    `usage` is what the answers received before the failure cost (they are paid for too);
    `retry_after` is the server's Retry-After header, if it sent one."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        usage: TokenUsage | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.usage = usage or TokenUsage()
        self.retry_after = retry_after


class Provider(Protocol):
    name: str
    model: str

    @property
    def takes_images(self) -> bool:
        """Whether it can be shown screenshots (see ImageProvider)."""
        ...

    def stream_plan(self, request: BuildRequest) -> Iterator[Task | PlanDraft]:
        """Yield each task as soon as it is complete, then the whole draft, last."""
        ...

    def stream_change(self, request: BuildRequest, base: BaseVersion) -> Iterator[Task | PlanDraft]:
        """stream_plan for a change of `base`: tasks only for what changes (modify_file,
        create_file, delete_file, ...); every other file of the base is kept as it is."""
        ...

    async def generate_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        """Async, so that the tasks of a build wait on their calls at the same time."""
        ...

    def repair_dependencies(
        self, tasks: tuple[Task, ...], cycles: list[list[str]]
    ) -> DependencyRepair: ...

    def estimate_calls_usd(self, calls: Sequence[CallBound]) -> Decimal | None:
        """The most these calls may cost, each with a whole answer (None when the model has no
        price): a build's estimate, held at its admission."""
        ...

    def estimate_plan_usd(self, request: BuildRequest) -> Decimal | None:
        """The most planning the request may cost: its plan call and re-asks at their worst
        (None when the model has no price); the ingress refuses what cannot afford it."""
        ...


class ImageProvider(Provider, Protocol):
    """A provider whose models look at images: a repair round shows it the screenshots."""

    async def generate_files(
        self,
        task: Task,
        plan: Plan,
        context_files: Mapping[str, str],
        images: Sequence[bytes] = (),
    ) -> GeneratedFiles: ...
