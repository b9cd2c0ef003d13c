"""What every LLM provider shares: prompts, streamed plans, healing and pricing. A transport
(Anthropic SDK, OpenAI-compatible HTTP) only moves messages and reports token counts."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from sheen_pipeline.models import BuildRequest, Plan, Task, check_relative_path, check_tasks
from sheen_pipeline.providers import prompts
from sheen_pipeline.providers.backoff import backoff_s, with_retries, with_retries_async
from sheen_pipeline.providers.base import (
    DependencyRepair,
    GeneratedFiles,
    PlanDraft,
    ProviderError,
)
from sheen_pipeline.providers.healing import Completion, Healed, Reask, heal, heal_async
from sheen_pipeline.providers.partial_json import StreamedTaskReader
from sheen_pipeline.providers.pricing import Price, priced
from sheen_pipeline.providers.prompts import Message, SystemBlock
from sheen_pipeline.providers.schemas import (
    DependenciesSpec,
    FilesSpec,
    PlanSpec,
    TaskSpec,
    json_schema,
)

T = TypeVar("T")
Schema = dict[str, Any]


class ChatTransport(Protocol):
    name: str
    model: str
    max_retries: int

    def complete(
        self, system: list[SystemBlock], messages: list[Message], schema: Schema
    ) -> Completion:
        """One answer; usage has token counts only (no cost)."""
        ...

    def stream(
        self, system: list[SystemBlock], messages: list[Message], schema: Schema
    ) -> Iterator[str | Completion]:
        """Text as it arrives, then the whole answer as a Completion, last."""
        ...

    async def complete_async(
        self, system: list[SystemBlock], messages: list[Message], schema: Schema
    ) -> Completion:
        """complete() for task ops running at the same time; cancelling it ends the request."""
        ...


def _parse(model: type[BaseModel], text: str) -> Any:
    return model.model_validate_json(text)


def validate_plan(text: str) -> tuple[str, tuple[Task, ...]]:
    spec: PlanSpec = _parse(PlanSpec, text)
    tasks = tuple(t.to_task() for t in spec.tasks)
    check_tasks(tasks)
    for task in tasks:
        check_relative_path(task.input.target_path)
    return spec.summary, tasks


def validate_files(text: str) -> dict[str, str]:
    spec: FilesSpec = _parse(FilesSpec, text)
    if not spec.files:
        raise ValueError("files: at least one file is required")
    for file in spec.files:
        check_relative_path(file.path)
    return {file.path: file.content for file in spec.files}


def _validate_dependencies(tasks: tuple[Task, ...]) -> Callable[[str], dict[str, tuple[str, ...]]]:
    known = {t.id for t in tasks}

    def validate(text: str) -> dict[str, tuple[str, ...]]:
        spec: DependenciesSpec = _parse(DependenciesSpec, text)
        unknown = {d for t in spec.tasks for d in [t.id, *t.dependencies]} - known
        if unknown:
            raise ValueError(f"unknown task ids: {', '.join(sorted(unknown))}")
        return {t.id: tuple(t.dependencies) for t in spec.tasks}

    return validate


def _streamed_task(raw: dict[str, Any]) -> Task | None:
    try:
        return TaskSpec.model_validate(raw).to_task()
    except ValidationError:
        return None  # the final answer is healed as a whole


def repair_conversation(messages: list[Message], reask: Reask) -> list[Message]:
    """The request again, with the invalid answer and what was wrong with it; a cut-off
    answer is left out and asked for anew, and an empty one is not sent back (an empty
    assistant turn is refused by the API)."""
    if reask.cut_off:
        return [*messages, prompts.cut_off_request()]
    if not reask.invalid.strip():
        return [*messages, prompts.repair_request(reask.problem)]
    return [
        *messages,
        {"role": "assistant", "content": reask.invalid},
        prompts.repair_request(reask.problem),
    ]


class LLMProvider:
    def __init__(self, transport: ChatTransport, price: Price | None) -> None:
        self.transport = transport
        self.price = price
        self.name = transport.name
        self.model = transport.model

    def _priced(self, completion: Completion) -> Completion:
        usage = priced(completion.usage, self.price).model_copy(update={"calls": 1})
        return replace(completion, usage=usage)

    def _ask(
        self, system: list[SystemBlock], messages: list[Message], schema: Schema
    ) -> Completion:
        completion = with_retries(
            lambda: self.transport.complete(system, messages, schema), self.transport.max_retries
        )
        return self._priced(completion)

    async def _ask_async(
        self, system: list[SystemBlock], messages: list[Message], schema: Schema
    ) -> Completion:
        completion = await with_retries_async(
            lambda: self.transport.complete_async(system, messages, schema),
            self.transport.max_retries,
        )
        return self._priced(completion)

    def _healed(
        self,
        first: Completion,
        system: list[SystemBlock],
        messages: list[Message],
        schema: Schema,
        validate: Callable[[str], T],
        what: str,
    ) -> Healed[T]:
        def reask(request: Reask) -> Completion:
            return self._ask(system, repair_conversation(messages, request), schema)

        return heal(first, validate, reask, what)

    def stream_plan(self, request: BuildRequest) -> Iterator[Task | PlanDraft]:
        system, messages, schema = (
            prompts.plan_system(),
            prompts.plan_request(request),
            json_schema(PlanSpec),
        )
        shown: set[str] = set()
        final: Completion | None = None
        for attempt in range(self.transport.max_retries + 1):
            try:
                final = yield from self._stream_tasks(system, messages, schema, shown)
                break
            except ProviderError as error:
                if not error.retryable or attempt == self.transport.max_retries:
                    raise
                time.sleep(backoff_s(attempt, error.retry_after))
        if final is None:
            raise RuntimeError("the transport's stream ended without a final answer")
        healed = self._healed(final, system, messages, schema, validate_plan, "plan")
        summary, tasks = healed.value
        yield PlanDraft(summary, tasks, healed.usage, healed.heals)

    def _stream_tasks(
        self, system: list[SystemBlock], messages: list[Message], schema: Schema, shown: set[str]
    ) -> Generator[Task, None, Completion | None]:
        """One streamed answer: each task not shown yet as soon as it is complete, then the
        answer. A stream that breaks with a transient error is started again by the caller."""
        reader = StreamedTaskReader()
        final: Completion | None = None
        for item in self.transport.stream(system, messages, schema):
            if isinstance(item, Completion):
                final = self._priced(item)
                continue
            for raw in reader.feed(item):
                task = _streamed_task(raw)
                if task is not None and task.id not in shown:
                    shown.add(task.id)
                    yield task
        return final

    async def generate_files(
        self, task: Task, plan: Plan, context_files: Mapping[str, str]
    ) -> GeneratedFiles:
        system, messages = prompts.task_system(plan), prompts.task_request(task, context_files)
        schema = json_schema(FilesSpec)

        async def reask(request: Reask) -> Completion:
            conversation = repair_conversation(messages, request)
            return await self._ask_async(system, conversation, schema)

        first = await self._ask_async(system, messages, schema)
        healed = await heal_async(first, validate_files, reask, f"task {task.id}")
        return GeneratedFiles(healed.value, healed.usage, healed.heals)

    def repair_dependencies(
        self, tasks: tuple[Task, ...], cycles: list[list[str]]
    ) -> DependencyRepair:
        system, messages = prompts.plan_system(), prompts.dependency_request(tasks, cycles)
        schema = json_schema(DependenciesSpec)
        first = self._ask(system, messages, schema)
        healed = self._healed(
            first, system, messages, schema, _validate_dependencies(tasks), "dependency repair"
        )
        return DependencyRepair(healed.value, healed.usage)
