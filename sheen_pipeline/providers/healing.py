"""Validate model output; repair it locally, then re-ask at most twice with the error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import ValidationError

from sheen_pipeline.models import TokenUsage
from sheen_pipeline.providers.base import ProviderError
from sheen_pipeline.providers.json_repair import repair_json

T = TypeVar("T")

MAX_REASKS = 2
MAX_ERROR_CHARS = 1500


@dataclass(frozen=True)
class Completion:
    """A model's raw answer and what it cost; cut_off when it ended at the output token limit,
    refused when the model declined (the text then says why, if anything)."""

    text: str
    usage: TokenUsage
    cut_off: bool = False
    refused: bool = False


@dataclass(frozen=True)
class Healed(Generic[T]):
    value: T
    usage: TokenUsage
    heals: int


def describe(error: Exception) -> str:
    if isinstance(error, ValidationError):
        text = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'answer'}: {item['msg']}"
            for item in error.errors()
        )
    else:
        text = str(error)
    return text[:MAX_ERROR_CHARS]


CUT_OFF = "the answer was cut off at the output token limit (SHEEN_MAX_TOKENS)"


@dataclass(frozen=True)
class Reask:
    """What to ask again about: the invalid answer and what was wrong with it. A cut-off answer
    is never repaired into a result, nor shown to the model again: it is asked for anew."""

    invalid: str
    problem: str
    cut_off: bool


def accepts(answer: Completion, validate: Callable[[str], object]) -> bool:
    """Whether healing takes the answer as it is or repaired locally; a call whose answer it
    does not is recorded as `rejected` (it is asked again, or the step fails)."""
    if answer.refused or answer.cut_off:
        return False
    for text in (answer.text, repair_json(answer.text)):
        try:
            validate(text)
        except ValueError:
            continue
        return True
    return False


def _healing(
    first: Completion, validate: Callable[[str], T], what: str
) -> Generator[Reask, Completion, Healed[T]]:
    """The healing of one answer, written once for sync and async callers: yields each re-ask
    it needs and is sent the answer. Each local repair or re-ask that was needed is one heal."""
    answer, usage, heals = first, first.usage, 0
    for reasks in range(MAX_REASKS + 1):
        if answer.refused:
            reason = f": {answer.text.strip()[:MAX_ERROR_CHARS]}" if answer.text.strip() else ""
            raise ProviderError(f"{what}: the model refused to answer{reason}", usage=usage)
        if answer.cut_off:
            problem = CUT_OFF
        else:
            try:
                return Healed(validate(answer.text), usage, heals)
            except ValueError as error:
                problem = describe(error)
            try:
                return Healed(validate(repair_json(answer.text)), usage, heals + 1)
            except ValueError:
                pass
        if reasks == MAX_REASKS:
            break
        answer = yield Reask(answer.text, problem, answer.cut_off)
        usage, heals = usage + answer.usage, heals + 1
    raise ProviderError(
        f"{what}: the model's answer is still invalid after {MAX_REASKS} re-asks: {problem}",
        usage=usage,
    )


def heal(
    first: Completion,
    validate: Callable[[str], T],
    reask: Callable[[Reask], Completion],
    what: str,
) -> Healed[T]:
    steps = _healing(first, validate, what)
    try:
        request = next(steps)
        while True:
            request = steps.send(reask(request))
    except StopIteration as done:
        healed: Healed[T] = done.value
        return healed


async def heal_async(
    first: Completion,
    validate: Callable[[str], T],
    reask: Callable[[Reask], Awaitable[Completion]],
    what: str,
) -> Healed[T]:
    steps = _healing(first, validate, what)
    try:
        request = next(steps)
        while True:
            request = steps.send(await reask(request))
    except StopIteration as done:
        healed: Healed[T] = done.value
        return healed
