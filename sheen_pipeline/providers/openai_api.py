"""Transport for OpenAI-compatible servers (vLLM, llama.cpp server, Ollama): requests for the
streamed plan, an async client (httpx2, which the Anthropic SDK brings) for task calls."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import httpx2
import requests

from sheen_pipeline.config import ModelCalls
from sheen_pipeline.models import TokenUsage
from sheen_pipeline.providers.base import ProviderError
from sheen_pipeline.providers.healing import Completion
from sheen_pipeline.providers.loop_local import LoopLocal
from sheen_pipeline.providers.prompts import Message, SystemBlock
from sheen_pipeline.redaction import redact

CUT_OFF_REASON = "length"  # finish_reason of an answer that hit max_tokens
TRANSIENT_ERRORS = {"overloaded_error", "rate_limit_error", "server_error", "api_error"}
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504, 529}


UNKNOWN_USAGE = TokenUsage(cost_usd=None)  # a server that reports no usage: cost unknown, not $0


def _usage(usage: dict[str, Any] | None) -> TokenUsage:
    if not usage:
        return UNKNOWN_USAGE
    prompt = int(usage.get("prompt_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return TokenUsage(
        input_tokens=prompt - cached,
        cache_read_tokens=cached,
        output_tokens=int(usage.get("completion_tokens") or 0),
    )


class OpenAICompatibleTransport:
    takes_images = False  # many OpenAI-compatible (local) models take no images: text only
    name = "openai"

    def __init__(self, base_url: str, api_key: str, calls: ModelCalls) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = calls.model
        self.max_tokens = calls.max_tokens
        self.timeout_s = calls.timeout_s
        self.max_retries = calls.max_retries
        self._secrets = (api_key,)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._session = requests.Session()
        self._session.headers.update(headers)
        self._async_client = LoopLocal(lambda: httpx2.AsyncClient(headers=headers))

    def _body(
        self,
        system: list[SystemBlock],
        messages: list[Message],
        schema: dict[str, Any],
        stream: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": [
                {"role": "system", "content": "\n\n".join(b.text for b in system)},
                *messages,
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": schema.get("title", "answer"),
                    "schema": schema,
                    "strict": True,
                },
            },
        }
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        return body

    def _post(self, body: dict[str, Any]) -> requests.Response:
        """One POST; a failure is a ProviderError saying whether another attempt may help (the
        provider retries, the same way on every path)."""
        try:
            response = self._session.post(
                self.url, json=body, timeout=self.timeout_s, stream=bool(body.get("stream"))
            )
        except requests.Timeout:
            raise self._error(f"timed out after {self.timeout_s}s", retryable=True) from None
        except requests.ConnectionError as error:
            raise self._error(f"cannot connect: {error}", retryable=True) from None
        if response.status_code >= 400:  # (a streamed body is read only when it is an error)
            raise self._status_error(response.status_code, response.text, response.headers)
        return response

    async def _post_async(self, body: dict[str, Any]) -> Any:
        """_post for task calls: cancelling it (a task's time limit) closes the request."""
        try:
            response = await self._async_client.get().post(
                self.url, json=body, timeout=self.timeout_s
            )
        except httpx2.TimeoutException:
            raise self._error(f"timed out after {self.timeout_s}s", retryable=True) from None
        except httpx2.TransportError as error:
            raise self._error(f"cannot connect: {error}", retryable=True) from None
        if response.status_code >= 400:
            raise self._status_error(response.status_code, response.text, response.headers)
        return response.json()

    def _stream_error(self, error: dict[str, Any]) -> ProviderError:
        """An error sent inside a stream, classified like its HTTP twin."""
        kind = str(error.get("type") or error.get("code") or "error")
        transient = kind in TRANSIENT_ERRORS or error.get("code") in RETRYABLE_STATUS
        return self._error(f"{kind} inside the stream: {error.get('message', '')}", transient)

    def _status_error(self, status: int, text: str, headers: Mapping[str, str]) -> ProviderError:
        return self._error(
            f"HTTP {status}: {text[:500]}",
            retryable=status in RETRYABLE_STATUS,
            retry_after=headers.get("retry-after"),
        )

    def _error(
        self, problem: str, retryable: bool, retry_after: str | None = None
    ) -> ProviderError:
        message = redact(f"OpenAI-compatible server {self.url}: {problem}", self._secrets)
        return ProviderError(message, retryable=retryable, retry_after=retry_after)

    def complete(
        self, system: list[SystemBlock], messages: list[Message], schema: dict[str, Any]
    ) -> Completion:
        return self._completion(self._post(self._body(system, messages, schema, False)).json())

    async def complete_async(
        self, system: list[SystemBlock], messages: list[Message], schema: dict[str, Any]
    ) -> Completion:
        return self._completion(await self._post_async(self._body(system, messages, schema, False)))

    def _completion(self, data: Any) -> Completion:
        try:
            choice = data["choices"][0]
            refusal = choice["message"].get("refusal") or ""
            text = refusal or choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise self._error(f"unexpected answer: {str(data)[:300]}", retryable=False) from None
        cut_off = choice.get("finish_reason") == CUT_OFF_REASON
        usage = _usage(data.get("usage"))
        return Completion(text, usage, cut_off=cut_off, refused=bool(refusal))

    def stream(
        self, system: list[SystemBlock], messages: list[Message], schema: dict[str, Any]
    ) -> Iterator[str | Completion]:
        response = self._post(self._body(system, messages, schema, stream=True))
        parts: list[str] = []
        usage = UNKNOWN_USAGE
        cut_off = False
        try:
            for line in response.iter_lines(chunk_size=None, decode_unicode=True):
                if not line or not line.startswith("data:"):
                    continue
                payload = line.removeprefix("data:").strip()
                if payload == "[DONE]":
                    break
                chunk = json.loads(payload)
                if isinstance(chunk.get("error"), dict):
                    raise self._stream_error(chunk["error"])
                if chunk.get("usage"):
                    usage = _usage(chunk["usage"])
                for choice in chunk.get("choices") or []:
                    cut_off = cut_off or choice.get("finish_reason") == CUT_OFF_REASON
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        parts.append(text)
                        yield text
        except requests.RequestException as error:
            raise self._error(f"stream broke: {error}", retryable=True) from None
        finally:
            response.close()
        yield Completion("".join(parts), usage, cut_off=cut_off)
