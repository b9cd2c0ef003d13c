"""Reads a streamed plan ({"summary": ..., "tasks": [{...}, ...]}) and hands out each task object
as soon as its closing brace arrives, while the rest of the answer is still streaming."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import suppress
from typing import Any


class StreamedTaskReader:
    def __init__(self, array_key: str = "tasks") -> None:
        self.array_key = array_key
        self._text: list[str] = []
        self._position = 0
        self._frames: list[tuple[str, str | None]] = []  # (kind, key in parent)
        self._in_string = self._escaped = False
        self._string_start = 0
        self._last_string: str | None = None
        self._pending_key: str | None = None
        self._object_start: int | None = None

    def _in_tasks_array(self) -> bool:
        return (
            len(self._frames) == 2
            and self._frames[0][0] == "{"
            and self._frames[1] == ("[", self.array_key)
        )

    def feed(self, chunk: str) -> Iterator[dict[str, Any]]:
        """Yield every task object completed by this chunk, as parsed JSON."""
        self._text.append(chunk)
        text = "".join(self._text)
        self._text = [text]
        for index in range(self._position, len(text)):
            char = text[index]
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
                    self._last_string = text[self._string_start + 1 : index]
                continue
            if char == '"':
                self._in_string = True
                self._string_start = index
            elif char == ":":
                self._pending_key = self._last_string
            elif char in "{[":
                if char == "{" and self._in_tasks_array():
                    self._object_start = index
                key = self._pending_key if self._frames and self._frames[-1][0] == "{" else None
                self._frames.append((char, key))
                self._pending_key = None
            elif char in "}]":
                if self._frames:
                    self._frames.pop()
                if char == "}" and self._in_tasks_array() and self._object_start is not None:
                    # A malformed object is skipped: the final answer is healed as a whole.
                    with suppress(json.JSONDecodeError):
                        yield json.loads(text[self._object_start : index + 1])
                    self._object_start = None
        self._position = len(text)
