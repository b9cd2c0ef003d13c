"""The interface every LLM provider implements; the planner and task ops depend only on this."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from sheen_pipeline.models import BuildRequest, Plan, Task, TokenUsage


@dataclass(frozen=True)
class PlanDraft:
    """The tasks a provider proposed, before validation and cycle recovery."""

    summary: str
    tasks: tuple[Task, ...]
    usage: TokenUsage


@dataclass(frozen=True)
class GeneratedFiles:
    files: Mapping[str, str]
    usage: TokenUsage


@dataclass(frozen=True)
class DependencyRepair:
    """New dependency lists, by task id, proposed to break cycles."""

    dependencies: Mapping[str, tuple[str, ...]]
    usage: TokenUsage


class ProviderError(RuntimeError):
    """A provider call failed; the message is safe to show (it never contains a key)."""


class Provider(Protocol):
    name: str
    model: str

    def plan(self, request: BuildRequest) -> PlanDraft: ...

    def generate_files(
        self, task: Task, plan: Plan, request: BuildRequest, context_files: Mapping[str, str]
    ) -> GeneratedFiles: ...

    def repair_dependencies(
        self, tasks: tuple[Task, ...], cycles: list[list[str]]
    ) -> DependencyRepair: ...
