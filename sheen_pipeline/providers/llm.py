"""What every LLM provider shares: prompts, streamed plans, healing and pricing. A transport
(Anthropic SDK, OpenAI-compatible HTTP) only moves messages and reports token counts. Past 350
lines because the streamed plan's parsing, its healing and the pricing of each call share the
provider's state; split, each part would reach into the others."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from sheen_pipeline.budgets import Meter, Reservation
from sheen_pipeline.config.prices import Price
from sheen_pipeline.models import (
    MAX_ACCEPTANCE_STEPS,
    AcceptanceStep,
    BuildRequest,
    Plan,
    Task,
    TokenUsage,
    check_relative_path,
    check_tasks,
)
from sheen_pipeline.planning.planner import check_edited_files
from sheen_pipeline.providers import prompts
from sheen_pipeline.providers.backoff import backoff_s, with_retries, with_retries_async
from sheen_pipeline.providers.base import (
    BaseVersion,
    CallBound,
    DependencyRepair,
    GeneratedFiles,
    PlanDraft,
    ProviderError,
)
from sheen_pipeline.providers.healing import (
    MAX_REASKS,
    Completion,
    Healed,
    Reask,
    accepts,
    heal,
    heal_async,
)
from sheen_pipeline.providers.partial_json import StreamedTaskReader
from sheen_pipeline.providers.pricing import MILLION, priced
from sheen_pipeline.providers.prompts import Message, SystemBlock
from sheen_pipeline.providers.schemas import (
    DependenciesSpec,
    EditSpec,
    FilesSpec,
    PlanSpec,
    TaskSpec,
    json_schema,
)

T = TypeVar("T")
CHARS_PER_TOKEN = 3  # fewer than the usual 4, so estimates err on the high side
IMAGE_TOKENS = 1600  # Anthropic's most for an image it has scaled to about 1.15 megapixels
MESSAGE_CHARS = 20  # a message's role and framing
ANSWER_CHARS_PER_TOKEN = 8  # the most characters a token of an answer may stand for (code: 3-4)


@dataclass
class Bill:
    """What a metered call cost, set by the caller once it has the answer."""

    usage: TokenUsage = field(default_factory=TokenUsage)
    accepted: bool = True  # False: the answer is asked again (recorded as `rejected`)


def estimate_tokens(system: list[SystemBlock], messages: list[Message]) -> int:
    """A high estimate of a prompt's tokens, from its length (and a fixed cost per image)."""
    chars = sum(len(block.text) for block in system)
    chars += sum(len(m["content"]) + MESSAGE_CHARS for m in messages)
    images = sum(len(m.get("images", ())) for m in messages)
    return bound_tokens(CallBound(chars, images))


def bound_tokens(call: CallBound) -> int:
    return call.chars // CHARS_PER_TOKEN + 1 + call.images * IMAGE_TOKENS


Schema = dict[str, Any]
Validator = Callable[[str], object]


class ChatTransport(Protocol):
    name: str
    model: str
    max_retries: int
    max_tokens: int
    takes_images: bool  # screenshots are shown to the model (repair rounds)

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


Draft = tuple[str, tuple[Task, ...], tuple[AcceptanceStep, ...]]  # summary, tasks, steps


def validate_plan(text: str) -> Draft:
    spec: PlanSpec = _parse(PlanSpec, text)
    tasks = tuple(t.to_task() for t in spec.tasks)
    check_tasks(tasks)
    for task in tasks:
        check_relative_path(task.input.target_path)
    if len(spec.acceptance) > MAX_ACCEPTANCE_STEPS:
        raise ValueError(f"acceptance: at most {MAX_ACCEPTANCE_STEPS} steps")
    return spec.summary, tasks, tuple(spec.acceptance)


def files_validator(
    current: Mapping[str, str], max_chars: int | None = None
) -> Callable[[str], dict[str, str]]:
    """Checks an answer of whole files and edits; an edit must apply exactly (its search text
    found once in the current file), or the model is asked again, told to send the file whole.
    An answer longer than max_chars is refused unread: a build's estimate counts on it."""

    def validate(text: str) -> dict[str, str]:
        if max_chars is not None and len(text) > max_chars:
            raise ValueError(f"the answer is {len(text)} characters long, over {max_chars}")
        spec: FilesSpec = _parse(FilesSpec, text)
        if not spec.files and not spec.edits:
            raise ValueError("files: at least one file (or one edit) is required")
        files = {}
        for file in spec.files:
            check_relative_path(file.path)
            files[file.path] = file.content
        for edit in spec.edits:
            files[edit.path] = apply_edit(files.get(edit.path, current.get(edit.path)), edit)
        return files

    return validate


def apply_edit(content: str | None, edit: EditSpec) -> str:
    if content is None:
        raise ValueError(f"edits: {edit.path!r} is not a file you were given; send it in files")
    found = content.count(edit.search) if edit.search else 0
    if found != 1:
        raise ValueError(
            f"edits: the search text for {edit.path!r} occurs {found} times in the file, it must "
            "occur exactly once; copy it exactly with a line or two more, or send the whole file "
            "in files instead"
        )
    return content.replace(edit.search, edit.replace, 1)


def change_validator(
    base_tree: Mapping[str, int],
) -> Callable[[str], Draft]:
    def validate(text: str) -> Draft:
        draft = validate_plan(text)
        check_edited_files(draft[1], base_tree)
        return draft

    return validate


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


def repair_conversation(
    messages: list[Message], reask: Reask, max_chars: int | None = None
) -> list[Message]:
    """The request again, with the invalid answer and what was wrong with it; a cut-off
    answer is left out and asked for anew, and an empty one (an empty assistant turn is
    refused by the API) or one over max_chars (a build's estimate counts on it) is not sent
    back."""
    if reask.cut_off:
        return [*messages, prompts.cut_off_request()]
    if not reask.invalid.strip() or (max_chars is not None and len(reask.invalid) > max_chars):
        return [*messages, prompts.repair_request(reask.problem)]
    return [
        *messages,
        {"role": "assistant", "content": reask.invalid},
        prompts.repair_request(reask.problem),
    ]


class LLMProvider:
    def __init__(
        self, transport: ChatTransport, price: Price | None, meter: Meter | None = None
    ) -> None:
        self.transport = transport
        self.price = price
        self.meter = meter
        self.name = transport.name
        self.model = transport.model

    def _priced(self, completion: Completion) -> Completion:
        usage = priced(completion.usage, self.price).model_copy(update={"calls": 1})
        return replace(completion, usage=usage)

    def worst_case_usd(self, prompt_tokens: int) -> Decimal | None:
        """A call's most: its prompt (at the dearer of input and cache-write prices) and a
        whole `max_tokens` answer; None when the model has no price."""
        if self.price is None:
            return None
        prompt_price = max(self.price.input, self.price.cache_write)
        output = self.transport.max_tokens * self.price.output
        return (prompt_tokens * prompt_price + output) / MILLION

    def estimate_calls_usd(self, calls: Sequence[CallBound]) -> Decimal | None:
        if self.price is None:
            return None
        return sum((self.worst_case_usd(bound_tokens(c)) or Decimal(0) for c in calls), Decimal(0))

    def estimate_plan_usd(self, request: BuildRequest) -> Decimal | None:
        """The plan call with its prompt, and each re-ask, which repeats it with the rejected
        answer (at most max_tokens) added, all at their worst."""
        prompt = estimate_tokens(prompts.plan_system(), prompts.plan_request(request))
        calls = [
            self.worst_case_usd(prompt + n * self.transport.max_tokens)
            for n in range(MAX_REASKS + 1)
        ]
        return None if None in calls else sum((c for c in calls if c is not None), Decimal(0))

    @contextmanager
    def _metering(self, system: list[SystemBlock], messages: list[Message]) -> Iterator[Bill]:
        """Around one call: its worst case is checked against budgets (BudgetExceeded before
        anything is sent), and what it cost is billed after, whatever the outcome."""
        reservation = None
        if self.meter is not None:
            worst_case = self.worst_case_usd(estimate_tokens(system, messages))
            reservation = self.meter.reserve(worst_case)
        bill = Bill()
        try:
            yield bill
        except ProviderError as error:
            self._settle(reservation, error.usage, "error")
            raise
        except BaseException:
            self._settle(reservation, TokenUsage(), "error")
            raise
        self._settle(reservation, bill.usage, "ok" if bill.accepted else "rejected")

    def _settle(self, reservation: Reservation | None, usage: TokenUsage, outcome: str) -> None:
        if self.meter is not None:
            self.meter.settle(reservation, usage, outcome)

    def _metered(
        self,
        system: list[SystemBlock],
        messages: list[Message],
        call: Callable[[], Completion],
        validate: Validator,
    ) -> Completion:
        with self._metering(system, messages) as bill:
            completion = self._priced(call())
            bill.usage, bill.accepted = completion.usage, accepts(completion, validate)
        return completion

    async def _metered_async(
        self,
        system: list[SystemBlock],
        messages: list[Message],
        call: Callable[[], Awaitable[Completion]],
        validate: Validator,
    ) -> Completion:
        with self._metering(system, messages) as bill:
            completion = self._priced(await call())
            bill.usage, bill.accepted = completion.usage, accepts(completion, validate)
        return completion

    def _ask(
        self,
        system: list[SystemBlock],
        messages: list[Message],
        schema: Schema,
        validate: Validator,
    ) -> Completion:
        return with_retries(
            lambda: self._metered(
                system,
                messages,
                lambda: self.transport.complete(system, messages, schema),
                validate,
            ),
            self.transport.max_retries,
        )

    async def _ask_async(
        self,
        system: list[SystemBlock],
        messages: list[Message],
        schema: Schema,
        validate: Validator,
    ) -> Completion:
        return await with_retries_async(
            lambda: self._metered_async(
                system,
                messages,
                lambda: self.transport.complete_async(system, messages, schema),
                validate,
            ),
            self.transport.max_retries,
        )

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
            return self._ask(system, repair_conversation(messages, request), schema, validate)

        return heal(first, validate, reask, what)

    def stream_plan(self, request: BuildRequest) -> Iterator[Task | PlanDraft]:
        messages = prompts.plan_request(request)
        yield from self._stream_draft(prompts.plan_system(), messages, validate_plan)

    def stream_change(self, request: BuildRequest, base: BaseVersion) -> Iterator[Task | PlanDraft]:
        """A plan of only the tasks that change the base; one that edits a file that does not
        exist is healed like any invalid answer."""
        messages = prompts.change_request(request, base)
        yield from self._stream_draft(
            prompts.change_system(), messages, change_validator(base.tree)
        )

    def _stream_draft(
        self,
        system: list[SystemBlock],
        messages: list[Message],
        validate: Callable[[str], Draft],
    ) -> Iterator[Task | PlanDraft]:
        schema = json_schema(PlanSpec)
        shown: set[str] = set()
        final: Completion | None = None
        for attempt in range(self.transport.max_retries + 1):
            try:
                final = yield from self._stream_tasks(system, messages, schema, shown, validate)
                break
            except ProviderError as error:
                if not error.retryable or attempt == self.transport.max_retries:
                    raise
                time.sleep(backoff_s(attempt, error.retry_after))
        if final is None:
            raise RuntimeError("the transport's stream ended without a final answer")
        healed = self._healed(final, system, messages, schema, validate, "plan")
        summary, tasks, steps = healed.value
        yield PlanDraft(summary, tasks, healed.usage, healed.heals, steps)

    def _stream_tasks(
        self,
        system: list[SystemBlock],
        messages: list[Message],
        schema: Schema,
        shown: set[str],
        validate: Validator,
    ) -> Generator[Task, None, Completion | None]:
        """One streamed answer: each task not shown yet as soon as it is complete, then the
        answer. A stream that breaks with a transient error is started again by the caller."""
        reader = StreamedTaskReader()
        final: Completion | None = None
        with self._metering(system, messages) as bill:
            for item in self.transport.stream(system, messages, schema):
                if isinstance(item, Completion):
                    final = self._priced(item)
                    bill.usage, bill.accepted = final.usage, accepts(final, validate)
                    continue
                for raw in reader.feed(item):
                    task = _streamed_task(raw)
                    if task is not None and task.id not in shown:
                        shown.add(task.id)
                        yield task
        return final

    @property
    def takes_images(self) -> bool:
        return self.transport.takes_images

    async def generate_files(
        self,
        task: Task,
        plan: Plan,
        context_files: Mapping[str, str],
        images: Sequence[bytes] = (),
    ) -> GeneratedFiles:
        system = prompts.task_system(plan)
        messages = prompts.task_request(task, context_files, images)
        schema = json_schema(FilesSpec)

        longest = self.transport.max_tokens * ANSWER_CHARS_PER_TOKEN
        validate = files_validator(context_files, longest)

        async def reask(request: Reask) -> Completion:
            conversation = repair_conversation(messages, request, longest)
            return await self._ask_async(system, conversation, schema, validate)

        first = await self._ask_async(system, messages, schema, validate)
        healed = await heal_async(first, validate, reask, f"task {task.id}")
        return GeneratedFiles(healed.value, healed.usage, healed.heals)

    def repair_dependencies(
        self, tasks: tuple[Task, ...], cycles: list[list[str]]
    ) -> DependencyRepair:
        system, messages = prompts.plan_system(), prompts.dependency_request(tasks, cycles)
        schema = json_schema(DependenciesSpec)
        validate = _validate_dependencies(tasks)
        first = self._ask(system, messages, schema, validate)
        healed = self._healed(first, system, messages, schema, validate, "dependency repair")
        return DependencyRepair(healed.value, healed.usage)
