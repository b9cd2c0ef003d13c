"""Local HTTP servers that speak the Anthropic Messages API and the OpenAI chat completions API
(JSON and Server-Sent Events), record every request, and answer from a script or, by default,
with the offline provider's plans and files in the real wire formats."""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler
from typing import Any

from sheen_pipeline.models import BuildRequest, Plan, Task, TaskType
from sheen_pipeline.providers.base import BaseVersion, PlanDraft
from sheen_pipeline.providers.offline import OfflineProvider, changes
from sheen_pipeline.providers.schemas import DependenciesSpec, FilesSpec, PlanSpec, TaskSpec
from tests.support.server import LoopbackHTTPServer


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def schema_title(self) -> str:
        if "output_config" in self.body:
            return str(self.body["output_config"]["format"]["schema"]["title"])
        return str(self.body["response_format"]["json_schema"]["schema"]["title"])

    @property
    def text(self) -> str:
        """Everything the request says, system and messages, as one string."""
        system = self.body.get("system", [])
        parts = [b["text"] for b in system] if isinstance(system, list) else [str(system)]
        for message in self.body["messages"]:
            content = message["content"]
            if isinstance(content, list):  # blocks: text, and images shown to the model
                parts += [block["text"] for block in content if block.get("type") == "text"]
            else:
                parts.append(str(content))
        return "\n".join(parts)

    @property
    def images(self) -> list[bytes]:
        """The images the request showed the model (Anthropic image blocks)."""
        return [
            base64.b64decode(block["source"]["data"])
            for message in self.body["messages"]
            if isinstance(message["content"], list)
            for block in message["content"]
            if block.get("type") == "image"
        ]


@dataclass
class Usage:
    input: int = 1000
    output: int = 500
    cache_write: int = 0
    cache_read: int = 0


@dataclass
class Reply:
    """A scripted answer: text (as JSON or streamed), an error status, or a raw body."""

    text: str = ""
    usage: Usage = field(default_factory=Usage)
    status: int = 200
    error_type: str = "api_error"
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[str] | None = None
    # Called between streamed chunks, with the index of the next chunk: lets a test gate a stream.
    between_chunks: Callable[[int], None] | None = None
    # Why the model stopped, in Anthropic's words: "end_turn", or "max_tokens" for a cut-off answer.
    stop: str = "end_turn"
    # A stream that sends this error type (e.g. "overloaded_error") after its chunks, with HTTP 200.
    stream_error: str | None = None
    # False: an OpenAI-compatible server that reports no usage.
    reports_usage: bool = True

    @property
    def finish_reason(self) -> str:
        """The same in OpenAI's words."""
        return {"end_turn": "stop", "max_tokens": "length", "refusal": "stop"}.get(
            self.stop, self.stop
        )


Responder = Callable[[Recorded], Reply]

_REQUEST = re.compile(r"<request>\n(.*?)\n</request>", re.DOTALL)
_FENCED = re.compile(r"```json\n(.*?)\n```", re.DOTALL)
_FILE = re.compile(r'<file path="([^"]+)">\n(.*?)\n</file>', re.DOTALL)


def offline_answer(request: Recorded) -> Reply:
    """What a well-behaved model would answer, made by the offline provider."""
    prompt = _REQUEST.search(request.text)
    build = BuildRequest(prompt=prompt.group(1) if prompt else "a site")
    offline = OfflineProvider()
    title = request.schema_title
    if title == PlanSpec.__name__:
        if "Plan this change:" in request.text:
            _SHOWN_BASES[build.prompt] = _shown_base(request)
            tasks = changes.change_tasks(build.prompt, _SHOWN_BASES[build.prompt])
            spec = PlanSpec(summary="a change", tasks=[TaskSpec.from_task(t) for t in tasks])
            return Reply(spec.model_dump_json())
        *_, draft = offline.stream_plan(build)
        assert isinstance(draft, PlanDraft)
        spec = PlanSpec(
            summary=draft.summary,
            tasks=[TaskSpec.from_task(t) for t in draft.tasks],
            acceptance=list(draft.acceptance),
        )
        return Reply(spec.model_dump_json())
    if title == FilesSpec.__name__:
        task = TaskSpec.model_validate_json(_FENCED.findall(request.text)[-1]).to_task()
        context = dict(_FILE.findall(request.text))
        edited = _as_edit(task, context)
        if edited is not None:
            return edited
        plan = Plan(build_id="fake", request=build, summary="fake", tasks=(task,))
        files = offline.render_files(task, plan, context).files
        return Reply(json.dumps({"files": [{"path": p, "content": c} for p, c in files.items()]}))
    if title == DependenciesSpec.__name__:
        specs = [TaskSpec.model_validate(t) for t in json.loads(_FENCED.findall(request.text)[-1])]
        seen: set[str] = set()
        tasks = []
        for spec in specs:
            tasks.append(
                {"id": spec.id, "dependencies": [d for d in spec.dependencies if d in seen]}
            )
            seen.add(spec.id)
        return Reply(json.dumps({"tasks": tasks}))
    raise AssertionError(f"unexpected schema {title}")


# The base each change plan was asked with, by prompt: its tasks' answers are edits of it.
_SHOWN_BASES: dict[str, BaseVersion] = {}


def _shown_base(request: Recorded) -> BaseVersion:
    contents = dict(_FILE.findall(request.text))
    return BaseVersion("fake", {p: len(c) for p, c in contents.items()}, contents, ())


def _as_edit(task: Task, context: dict[str, str]) -> Reply | None:
    """A change's modify_file answered as a model asked for edits would: one search/replace
    block around what changes (None when the task is not an offline follow-up)."""
    path, base = task.input.target_path, _SHOWN_BASES.get(task.input.prompt)
    if task.type is not TaskType.MODIFY_FILE or path not in context or base is None:
        return None
    edits = changes.plan_edits(task.input.prompt, base).get(path)
    if not edits:
        return None
    old = context[path]
    search, replace_with = edit_block(old, changes.apply_edits(edits, old))
    return Reply(
        json.dumps(
            {"files": [], "edits": [{"path": path, "search": search, "replace": replace_with}]}
        )
    )


def edit_block(old: str, new: str) -> tuple[str, str]:
    """The smallest run of whole lines of `old` that, replaced, gives `new`, and found once."""
    before, after = old.splitlines(keepends=True), new.splitlines(keepends=True)
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    end = 0
    while end < min(len(before), len(after)) - start and before[-1 - end] == after[-1 - end]:
        end += 1
    start = max(start - 1, 0)  # a line of context makes the search text unique
    while True:
        search = "".join(before[start : len(before) - end])
        if old.count(search) == 1 or start == 0:
            return search, "".join(after[start : len(after) - end])
        start -= 1


ABOUT = TaskSpec(
    id="about_page",
    type=TaskType.CREATE_FILE,
    name="About page",
    description="A page about the business, linked from the home page's navigation",
    priority=3,
    estimated_duration_s=10,
    target_path="about.html",
    prompt="the story of the business",
    dependencies=["config", "styles"],
)
ABOUT_PAGE = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>About</title>'
    '<link rel="stylesheet" href="styles.css"></head><body><h1>About us</h1></body></html>'
)


def six_tasks(request: Recorded) -> Reply:
    """The offline provider's 5-task plan plus an about page."""
    if request.schema_title == PlanSpec.__name__:
        spec = PlanSpec.model_validate_json(offline_answer(request).text)
        return Reply(spec.model_copy(update={"tasks": [*spec.tasks, ABOUT]}).model_dump_json())
    if ABOUT.target_path in request.text.split("Do this task:")[-1]:
        return Reply(json.dumps({"files": [{"path": "about.html", "content": ABOUT_PAGE}]}))
    return offline_answer(request)


def split(text: str, parts: int) -> list[str]:
    size = max(1, len(text) // parts)
    return [text[i : i + size] for i in range(0, len(text), size)]


class _Handler(BaseHTTPRequestHandler):
    server: FakeLLMServer
    protocol_version = "HTTP/1.1"  # streams are sent chunked, as real servers do

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        recorded = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        reply = self.server.next_reply(recorded)
        wire = self.server.wire
        if reply.status != 200:
            self._send_json(reply.status, wire.error(reply), reply.headers)
        elif body.get("stream"):
            self._send_stream(wire.stream_events(reply), reply)
        else:
            self._send_json(200, wire.message(reply, body.get("model", "")), reply.headers)

    def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, events: Iterator[str | int], reply: Reply) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event in events:
            if isinstance(event, int):
                if reply.between_chunks:
                    reply.between_chunks(event)
                continue
            data = event.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class AnthropicWire:
    @staticmethod
    def _usage(usage: Usage) -> dict[str, int]:
        return {
            "input_tokens": usage.input,
            "output_tokens": usage.output,
            "cache_creation_input_tokens": usage.cache_write,
            "cache_read_input_tokens": usage.cache_read,
        }

    def message(self, reply: Reply, model: str) -> dict[str, Any]:
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": reply.text}],
            "stop_reason": reply.stop,
            "stop_sequence": None,
            "usage": self._usage(reply.usage),
        }

    def error(self, reply: Reply) -> dict[str, Any]:
        return {"type": "error", "error": {"type": reply.error_type, "message": reply.text}}

    def stream_events(self, reply: Reply) -> Iterator[str | int]:
        def event(name: str, data: dict[str, Any]) -> str:
            return f"event: {name}\ndata: {json.dumps(data)}\n\n"

        start = self.message(Reply("", reply.usage), "fake") | {"content": [], "stop_reason": None}
        start["usage"] = self._usage(reply.usage) | {"output_tokens": 1}
        yield event("message_start", {"type": "message_start", "message": start})
        yield event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
        for index, chunk in enumerate(reply.chunks or split(reply.text, 8)):
            yield index
            yield event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": chunk},
                },
            )
        if reply.stream_error:
            error = {"type": reply.stream_error, "message": "Overloaded"}
            yield event("error", {"type": "error", "error": error})
            return
        yield event("content_block_stop", {"type": "content_block_stop", "index": 0})
        yield event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reply.stop, "stop_sequence": None},
                "usage": {"output_tokens": reply.usage.output},
            },
        )
        yield event("message_stop", {"type": "message_stop"})


class OpenAIWire:
    @staticmethod
    def _usage(usage: Usage) -> dict[str, Any]:
        return {
            "prompt_tokens": usage.input + usage.cache_read,
            "completion_tokens": usage.output,
            "total_tokens": usage.input + usage.cache_read + usage.output,
            "prompt_tokens_details": {"cached_tokens": usage.cache_read},
        }

    def message(self, reply: Reply, model: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text}
                    | ({"content": None, "refusal": reply.text} if reply.stop == "refusal" else {}),
                    "finish_reason": reply.finish_reason,
                }
            ],
        } | ({"usage": self._usage(reply.usage)} if reply.reports_usage else {})

    def error(self, reply: Reply) -> dict[str, Any]:
        return {"error": {"type": reply.error_type, "message": reply.text}}

    def stream_events(self, reply: Reply) -> Iterator[str | int]:
        def data(payload: dict[str, Any]) -> str:
            return f"data: {json.dumps(payload)}\n\n"

        for index, chunk in enumerate(reply.chunks or split(reply.text, 8)):
            yield index
            yield data(
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": chunk}, "finish_reason": None}],
                }
            )
        if reply.stream_error:
            yield data({"error": {"type": reply.stream_error, "message": "Overloaded"}})
            return
        yield data(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}],
            }
        )
        yield data(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "choices": [],
                "usage": self._usage(reply.usage),
            }
        )
        yield "data: [DONE]\n\n"


def tokens(text: str) -> int:
    """The fake's token count: 4 characters a token, about what English text gives."""
    return -(-len(text) // 4)


class PromptCache:
    """Anthropic's prompt caching, as the fake server applies it: each system block marked
    `cache_control` ends a prefix that is cached when it is at least MIN_TOKENS long; a request
    whose prefix was cached reads it, and the rest of its input is written or paid in full."""

    MIN_TOKENS = 1024

    def __init__(self) -> None:
        self._cached: set[str] = set()
        self._lock = threading.Lock()

    def usage(self, request: Recorded, answer: str) -> Usage:
        system = request.body.get("system", [])
        blocks = system if isinstance(system, list) else []
        prefixes, text = [], ""
        for block in blocks:
            text += block["text"]
            if "cache_control" in block:
                prefixes.append(text)
        total = tokens(request.text)
        with self._lock:
            read = max((tokens(p) for p in prefixes if p in self._cached), default=0)
            cacheable = [p for p in prefixes if tokens(p) >= self.MIN_TOKENS]
            written = max((tokens(p) for p in cacheable if p not in self._cached), default=read)
            self._cached.update(cacheable)
        write = max(written - read, 0)
        return Usage(total - read - write, tokens(answer), cache_write=write, cache_read=read)


class FakeLLMServer(LoopbackHTTPServer):
    def __init__(
        self,
        wire: AnthropicWire | OpenAIWire,
        default: Responder = offline_answer,
        prompt_cache: PromptCache | None = None,
    ) -> None:
        super().__init__(_Handler)
        self.wire = wire
        self.default = default
        self.prompt_cache = prompt_cache
        self.script: deque[Responder] = deque()
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a test's timeout) is expected; anything else is reported."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next_reply(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            responder = self.script.popleft() if self.script else self.default
        reply = responder(request)
        if self.prompt_cache is None:
            return reply
        return replace(reply, usage=self.prompt_cache.usage(request, reply.text))

    def then(self, *replies: Reply | Responder) -> FakeLLMServer:
        """Answer the next requests with these, in order, before falling back to the default."""
        for reply in replies:
            self.script.append(reply if callable(reply) else (lambda _r, reply=reply: reply))
        return self
