"""Local JSON repair and the streamed-task reader, on the awkward cases."""

from __future__ import annotations

import json

import pytest

from sheen_pipeline.providers.json_repair import repair_json
from sheen_pipeline.providers.partial_json import StreamedTaskReader


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('```json\n{"a": [1, 2,],}\n```', {"a": [1, 2]}),
        ('Sure! Here it is: {"k": "v"}', {"k": "v"}),
        ('{"a": [1, {"b": "cut mid-str', {"a": [1, {"b": "cut mid-str"}]}),
        ('{"x": 1, "y":', {"x": 1}),
        ('{"x": 1, "dangling"', {"x": 1}),
        ('{"s": "a, ] and } inside",}', {"s": "a, ] and } inside"}),
        ('{"s": "escaped \\" quote",', {"s": 'escaped " quote'}),
    ],
)
def test_repair_json(raw: str, expected: object) -> None:
    assert json.loads(repair_json(raw)) == expected


def test_reader_yields_each_task_once_whatever_the_chunking() -> None:
    text = json.dumps(
        {
            "summary": 'has {"tasks": [{"fake": 1}]} inside a string',
            "tasks": [
                {"id": "a", "note": 'braces } { and \\" quotes', "deps": []},
                {"id": "b", "nested": {"deep": [1, {"x": 2}]}, "deps": ["a"]},
            ],
            "other": [{"id": "not-a-task"}],
        }
    )
    for size in (1, 3, 17, len(text)):
        reader = StreamedTaskReader()
        found = [
            task for i in range(0, len(text), size) for task in reader.feed(text[i : i + size])
        ]
        assert [task["id"] for task in found] == ["a", "b"], size
