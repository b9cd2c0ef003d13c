"""The cost dashboard and `sheen costs` against builds priced by a local Messages API server:
every paid call counts (failed builds' too), and result-cache hits count as savings."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from dagster import AssetKey, DagsterInstance, materialize

from sheen_pipeline.cli import main
from sheen_pipeline.cli.operations import parse_since
from sheen_pipeline.config.prices import DEFAULT_PRICES, price_of
from sheen_pipeline.defs.costs import DAILY_COSTS, daily_costs
from tests.providers.conftest import llm_env
from tests.support.builds import build
from tests.support.fake_llm import (
    AnthropicWire,
    FakeLLMServer,
    Recorded,
    Reply,
    Usage,
    offline_answer,
)
from tests.support.sensors import resources

CALL_USD = Decimal("0.0105")  # every fake answer: 1000 input, 500 output tokens at $3 / $15 per M


def never_valid_files(request: Recorded) -> Reply:
    if request.schema_title == "FilesSpec":
        return Reply("this is not JSON at all")  # paid for, and never valid
    return offline_answer(request)


def test_the_daily_asset_and_sheen_costs_sum_every_paid_call(
    sheen_home: Path, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_TASK_RETRIES", "0")
    with FakeLLMServer(AnthropicWire()) as server:
        for name, value in llm_env("anthropic", server).items():
            monkeypatch.setenv(name, value)
        first, _ = build(instance, project_id="coffee", user_id="ann")
        again, _ = build(instance, project_id="coffee", user_id="ann")  # every result cached
        paid_calls = len(server.requests)
    with FakeLLMServer(AnthropicWire(), default=never_valid_files) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        failed, _ = build(instance, prompt="a blog about tea", project_id="tea", user_id="bob")
        paid_calls += len(server.requests)
    assert (first.status, again.status, failed.status) == ("succeeded", "succeeded", "failed")
    assert again.usage.calls == 0 and failed.usage.calls > 0

    today = datetime.now(UTC).date().isoformat()
    result = materialize(
        [daily_costs],
        partition_key=today,
        instance=instance,
        resources=resources(),
    )
    (materialization,) = result.asset_materializations_for_node(daily_costs.op.name)
    assert materialization.asset_key == DAILY_COSTS
    figures = {key: value.value for key, value in materialization.metadata.items()}
    assert figures["calls"] == paid_calls
    assert Decimal(str(figures["cost_usd"])) == CALL_USD * paid_calls
    assert figures["input_tokens"] == 1000 * paid_calls
    assert failed.usage.cost_usd is not None
    assert Decimal(str(figures["failed_builds_usd"])) == failed.usage.cost_usd
    assert Decimal(str(figures["result_cache_saved_usd"])) == first.usage.cost_usd
    assert (figures["builds_succeeded"], figures["builds_failed"]) == (2, 1)
    assert "| coffee |" in figures["by_project"] and "| tea |" in figures["by_project"]
    assert "| ann |" in figures["by_user"] and "claude-sonnet-5-5" in figures["by_model"]

    printed = CliRunner().invoke(main, ["costs", "--since", "1d", "--json"])
    assert printed.exit_code == 0, printed.output
    report = json.loads(printed.output)
    assert Decimal(report["totals"]["cost_usd"]) == CALL_USD * paid_calls
    assert report["totals"]["calls"] == paid_calls
    assert Decimal(report["by_project"]["tea"]["cost_usd"]) == failed.usage.cost_usd
    assert Decimal(report["by_project"]["coffee"]["result_cache_saved_usd"]) == (
        first.usage.cost_usd
    )
    table = CliRunner().invoke(main, ["costs", "--by", "user"]).output
    assert table.splitlines()[0].split()[:2] == ["user", "cost"]
    assert any(line.startswith("total") for line in table.splitlines())


def test_a_costly_build_is_flagged_on_its_preview_asset(
    sheen_home: Path, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEEN_RESULT_CACHE_TTL_S", "0")  # every build pays for its calls
    with FakeLLMServer(AnthropicWire()) as server:
        for name, value in llm_env("anthropic", server).items():
            monkeypatch.setenv(name, value)
        for _ in range(3):
            assert build(instance, project_id="fern")[0].status == "succeeded"
        server.default = ten_times_the_tokens
        costly, _ = build(instance, project_id="fern")
    assert costly.status == "succeeded"
    (record,) = instance.fetch_materializations(
        AssetKey(["sheen", "fern", "preview"]), limit=1
    ).records
    materialization = record.asset_materialization
    assert materialization is not None
    assert materialization.metadata["cost_anomaly"].value is True
    assert materialization.metadata["cost_median_usd"].value == pytest.approx(6 * 0.0105)


def ten_times_the_tokens(request: Recorded) -> Reply:
    return replace(offline_answer(request), usage=Usage(input=10_000, output=5_000))


def test_since_keeps_an_offset_and_reads_a_bare_date_as_utc_midnight() -> None:
    assert parse_since("2026-12-04T13:47:00+05:00") == datetime(2026, 12, 4, 8, 47, tzinfo=UTC)
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)


def test_a_dated_model_id_is_priced_as_its_family() -> None:
    sonnet = price_of(DEFAULT_PRICES, "claude-sonnet-5-5")
    assert sonnet is not None
    assert price_of(DEFAULT_PRICES, "claude-sonnet-5-5-20261001") == sonnet
    assert price_of(DEFAULT_PRICES, "claude-unknown-1-20261001") is None
