from __future__ import annotations

from decimal import Decimal

import pytest

from sheen_pipeline.models import (
    MAX_PROMPT_CHARS,
    InvalidRequest,
    TokenUsage,
    parse_build_request,
)


def test_prompt_is_trimmed_and_ids_default() -> None:
    request = parse_build_request(prompt="   a blog about tea  ")
    assert request.prompt == "a blog about tea"
    assert (request.project_id, request.user_id) == ("default", "anonymous")


@pytest.mark.parametrize("prompt", ["", "    ", "\n\t"])
def test_empty_prompt_is_refused_naming_the_field(prompt: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^prompt: must not be empty$"):
        parse_build_request(prompt=prompt)


@pytest.mark.parametrize("control", ["\x00", "\x07", "\x1b", "\r", "\x7f", "\x85"])
def test_control_characters_in_a_prompt_are_refused_naming_the_field(control: str) -> None:
    with pytest.raises(InvalidRequest, match=r"prompt: must not contain control characters"):
        parse_build_request(prompt=f"a site{control}for tea")


def test_newlines_tabs_and_crlf_are_kept_as_newlines() -> None:
    request = parse_build_request(prompt="a site\r\nwith\ttabs\nand lines")
    assert request.prompt == "a site\nwith\ttabs\nand lines"


def test_a_key_typed_into_a_prompt_is_never_kept_but_an_email_is() -> None:
    request = parse_build_request(
        prompt="a shop; my key is sk-ant-api03-abcdefghijklmnop, mail hello@fern.example"
    )
    assert "sk-ant" not in request.prompt and "[REDACTED]" in request.prompt
    assert "hello@fern.example" in request.prompt  # content the site may need


def test_prompt_length_limit_counts_after_trimming() -> None:
    assert parse_build_request(prompt="  " + "x" * MAX_PROMPT_CHARS + "  ")
    with pytest.raises(InvalidRequest, match=r"prompt: must be at most 2000 characters, got 2001"):
        parse_build_request(prompt="x" * (MAX_PROMPT_CHARS + 1))


def test_missing_prompt_is_named() -> None:
    with pytest.raises(InvalidRequest, match=r"prompt: Field required"):
        parse_build_request(project_id="p1")


@pytest.mark.parametrize("bad_id", ["../etc", "a b", "", "x" * 65, "-leading", "semi;colon"])
def test_unsafe_ids_are_refused_naming_the_field(bad_id: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^project_id: may contain only letters"):
        parse_build_request(prompt="a site", project_id=bad_id)
    with pytest.raises(InvalidRequest, match=r"^user_id: may contain only letters"):
        parse_build_request(prompt="a site", user_id=bad_id)


def test_unknown_framework_is_refused() -> None:
    with pytest.raises(InvalidRequest, match=r"^framework: "):
        parse_build_request(prompt="a site", framework="cobol")


def test_usage_adds_exactly_and_unknown_cost_stays_unknown() -> None:
    a = TokenUsage(input_tokens=10, output_tokens=5, cache_read_tokens=3, cost_usd=Decimal("0.1"))
    b = TokenUsage(input_tokens=1, output_tokens=2, cache_write_tokens=7, cost_usd=Decimal("0.2"))
    total = a + b
    assert (total.input_tokens, total.output_tokens) == (11, 7)
    assert (total.cache_read_tokens, total.cache_write_tokens) == (3, 7)
    assert total.total_tokens == 28
    assert total.cost_usd == Decimal("0.3")  # exact, where floats would give 0.30000000000000004
    assert (a + TokenUsage(cost_usd=None)).cost_usd is None
