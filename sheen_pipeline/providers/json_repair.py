"""Local repairs of model JSON before anything is re-asked: code fences, trailing commas and
truncated output (unclosed strings, arrays and objects)."""

from __future__ import annotations

import re

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)(?:```|$)", re.DOTALL)


def strip_fences(text: str) -> str:
    match = _FENCE.search(text)
    return match.group(1) if match else text


def _from_first_bracket(text: str) -> str:
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    return text[min(starts) :] if starts else text


def _scan(text: str) -> tuple[str, list[str], bool]:
    """Drop commas that precede a closing bracket; report open brackets and an open string."""
    out: list[str] = []
    stack: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]":
            _drop_trailing_comma(out)
            if stack:
                stack.pop()
        out.append(char)
    return "".join(out), stack, in_string


def _drop_trailing_comma(out: list[str]) -> None:
    index = len(out) - 1
    while index >= 0 and out[index].isspace():
        index -= 1
    if index >= 0 and out[index] == ",":
        del out[index]


def _close(text: str, stack: list[str], in_string: bool) -> str:
    if in_string:
        text += '"'
    text = text.rstrip()
    # A dangling key or separator cannot be completed: cut back to the last complete value.
    text = re.sub(r'(,\s*"[^"]*"\s*:?\s*|,\s*|:\s*)$', "", text)
    return text + "".join(reversed(stack))


def repair_json(text: str) -> str:
    candidate = _from_first_bracket(strip_fences(text).strip())
    cleaned, stack, in_string = _scan(candidate)
    if stack or in_string:
        closed = _close(cleaned, stack, in_string)
        cleaned, _, _ = _scan(closed)
    return cleaned
