"""Transport over the official Anthropic SDK: structured output, streaming, prompt caching."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic

from sheen_pipeline.config import ModelCalls
from sheen_pipeline.models import TokenUsage
from sheen_pipeline.providers.base import ProviderError
from sheen_pipeline.providers.healing import Completion
from sheen_pipeline.providers.loop_local import LoopLocal
from sheen_pipeline.providers.prompts import Message, SystemBlock
from sheen_pipeline.redaction import redact

DEFAULT_MODEL = "claude-sonnet-5-5"
TRANSIENT_ERRORS = {"overloaded_error", "rate_limit_error", "api_error", "timeout_error"}


def _usage(usage: Any) -> TokenUsage:
    return TokenUsage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_write_tokens=getattr(usage, "cache_creation_input_tokens", None) or 0,
        cache_read_tokens=getattr(usage, "cache_read_input_tokens", None) or 0,
    )


def _completion(message: Any) -> Completion:
    text = "".join(block.text for block in message.content if block.type == "text")
    return Completion(
        text,
        _usage(message.usage),
        cut_off=message.stop_reason == "max_tokens",
        refused=message.stop_reason == "refusal",
    )


def _api_error(error: anthropic.APIStatusError) -> tuple[str, str]:
    """The error's type (e.g. overloaded_error) and message, from its body."""
    body = error.body if isinstance(error.body, dict) else {}
    detail = body.get("error", {}) if isinstance(body.get("error"), dict) else {}
    return str(detail.get("type") or ""), str(detail.get("message") or error.message)


class AnthropicTransport:
    takes_images = True
    name = "anthropic"

    def __init__(self, api_key: str, calls: ModelCalls) -> None:
        self.model = calls.model
        self.max_retries = calls.max_retries
        self.max_tokens = calls.max_tokens
        self.timeout_s = calls.timeout_s
        self._secrets = (api_key,)
        # base_url comes from ANTHROPIC_BASE_URL when set.
        options: dict[str, Any] = {
            "api_key": api_key,
            "timeout": float(calls.timeout_s),
            "max_retries": 0,  # the provider retries, the same way on every path
        }
        self._client = anthropic.Anthropic(**options)
        self._async_client = LoopLocal(lambda: anthropic.AsyncAnthropic(**options))

    def _params(
        self, system: list[SystemBlock], messages: list[Message], schema: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": [
                {"type": "text", "text": block.text}
                | ({"cache_control": {"type": "ephemeral"}} if block.cache else {})
                for block in system
            ],
            "messages": [_with_images(message) for message in messages],
            "output_config": {"format": {"type": "json_schema", "schema": schema}},
        }

    @contextmanager
    def _translated_errors(self) -> Iterator[None]:
        """SDK errors become ProviderErrors whose messages never contain the key."""
        try:
            yield
        except anthropic.APIStatusError as error:
            status = error.status_code
            kind, detail = _api_error(error)
            # An error sent inside a stream arrives with the stream's 200: its type decides.
            retryable = status in (408, 409, 429) or status >= 500 or kind in TRANSIENT_ERRORS
            where = f"({kind} inside the stream)" if status == 200 else str(status)
            message = f"Anthropic API error {where}: {detail}"
            retry_after = error.response.headers.get("retry-after")
            raise ProviderError(
                redact(message, self._secrets), retryable=retryable, retry_after=retry_after
            ) from None
        except anthropic.APITimeoutError:
            raise ProviderError(
                f"Anthropic API timed out after {self.timeout_s}s", retryable=True
            ) from None
        except anthropic.APIConnectionError as error:
            message = f"cannot reach the Anthropic API: {error}"
            raise ProviderError(redact(message, self._secrets), retryable=True) from None

    def complete(
        self, system: list[SystemBlock], messages: list[Message], schema: dict[str, Any]
    ) -> Completion:
        with self._translated_errors():
            message = self._client.messages.create(**self._params(system, messages, schema))
        return _completion(message)

    async def complete_async(
        self, system: list[SystemBlock], messages: list[Message], schema: dict[str, Any]
    ) -> Completion:
        params = self._params(system, messages, schema)
        with self._translated_errors():
            message = await self._async_client.get().messages.create(**params)
        return _completion(message)

    def stream(
        self, system: list[SystemBlock], messages: list[Message], schema: dict[str, Any]
    ) -> Iterator[str | Completion]:
        with (
            self._translated_errors(),
            self._client.messages.stream(**self._params(system, messages, schema)) as stream,
        ):
            yield from stream.text_stream
            message = stream.get_final_message()
        yield _completion(message)


def _with_images(message: Message) -> dict[str, Any]:
    """A message with screenshots as Anthropic image blocks, before its text."""
    images = message.get("images")
    if not images:
        return message
    blocks: list[dict[str, Any]] = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
        for data in images
    ]
    return {
        "role": message["role"],
        "content": [*blocks, {"type": "text", "text": message["content"]}],
    }
