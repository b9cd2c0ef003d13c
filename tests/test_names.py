"""Dagster names of build and task ids: one injective rule, checked by Dagster's own name check."""

from __future__ import annotations

import pytest
from dagster._core.definitions.utils import check_valid_name, has_valid_name_chars
from hypothesis import given
from hypothesis import strategies as st

from sheen_pipeline.defs.build_job import task_id_of_node
from sheen_pipeline.models import SAFE_ID_PATTERN
from sheen_pipeline.runs.names import build_id_from_job_name, build_job_name, dagster_name

valid_ids = st.from_regex(SAFE_ID_PATTERN.replace("$", r"\Z"), fullmatch=True)


@given(valid_ids)
def test_every_valid_build_id_gives_a_valid_job_name_that_maps_back(build_id: str) -> None:
    name = build_job_name(build_id)
    assert check_valid_name(name) == name
    assert build_id_from_job_name(name) == build_id


@given(valid_ids)
def test_every_valid_task_id_gives_a_node_name_that_maps_back(task_id: str) -> None:
    node = dagster_name(task_id)
    assert has_valid_name_chars(node)
    assert task_id_of_node(node) == task_id


@given(valid_ids, valid_ids)
def test_distinct_ids_give_distinct_names(first: str, second: str) -> None:
    if first != second:
        assert build_job_name(first) != build_job_name(second)
        assert dagster_name(first) != dagster_name(second)


@pytest.mark.parametrize(
    ("build_id", "job_name"),
    [
        ("b1a2b3c4d5e6", "build_b1a2b3c4d5e6"),
        ("my_build", "build_my_build"),
        ("c2a-b0000", "build__c2a__b0000"),
        ("a_-b", "build__a_0__b"),
        ("a-_b", "build__a___0b"),
        ("123e4567-e89b-12d3-a456-426614174000", "build__123e4567__e89b__12d3__a456__426614174000"),
    ],
)
def test_readable_names_and_escapes(build_id: str, job_name: str) -> None:
    assert build_job_name(build_id) == job_name
    assert build_id_from_job_name(job_name) == build_id


@pytest.mark.parametrize(
    "job_name", ["plan_build", "build_", "build__abc", "build_a-b", "build___x", "build__a_1b"]
)
def test_names_no_valid_id_gives_are_refused(job_name: str) -> None:
    assert build_id_from_job_name(job_name) is None
