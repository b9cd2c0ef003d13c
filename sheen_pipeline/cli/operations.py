"""`sheen init` (the instance's pools) and `sheen costs`."""

from __future__ import annotations

import json
from datetime import datetime

import click

from sheen_pipeline.cli.app import ensure_dagster_home, load_settings, main
from sheen_pipeline.terminal import echo


@main.command()
def init() -> None:
    """Create the app tables and the artifact store's bucket when missing, and set the concurrency
    pool limits (plan, llm) on the instance."""
    from dagster import DagsterInstance

    from sheen_pipeline.runs.pools import set_pool_limits
    from sheen_pipeline.store.blobs import ArtifactStoreError, open_blobs
    from sheen_pipeline.store.engines import engine_for

    settings = load_settings()
    engine = engine_for(settings.database_url)
    try:
        echo("artifact store: " + open_blobs(settings.artifact_store, engine).prepare())
    except ArtifactStoreError as error:
        raise click.ClickException(f"SHEEN_ARTIFACT_STORE: {error}") from None
    ensure_dagster_home(settings)
    with DagsterInstance.get() as instance:
        applied = set_pool_limits(instance, settings, only_missing=False)
    echo("pools: " + ", ".join(f"{pool}={limit}" for pool, limit in applied.items()))


def parse_since(value: str) -> datetime:
    """`7d` (days back from now) or a date or time (`2026-11-01`, UTC midnight; an offset,
    `2026-12-04T13:47:00+05:00`, is kept)."""
    from datetime import UTC, timedelta

    if value.endswith("d") and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(days=int(value[:-1]))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: use a number of days (7d) or a date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@main.command()
@click.option("--since", default="7d", show_default=True, help="Days back (7d) or a date.")
@click.option(
    "--by",
    type=click.Choice(["day", "project", "user", "model"]),
    default="day",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="Every grouping as one JSON object.")
def costs(since: str, by: str, as_json: bool) -> None:
    """What builds cost since --since (every paid call, failed builds' included) and what the
    caches saved; the same figures as the sheen/costs/daily asset."""
    from datetime import UTC

    from sheen_pipeline.costs import COLUMNS, by_cost, cells, cost_report
    from sheen_pipeline.store.builds import BuildStore
    from sheen_pipeline.store.ledger import Ledger

    settings = load_settings()  # only reads: no service, so no webhook dispatcher starts
    url = settings.database_url
    report = cost_report(
        Ledger(url), BuildStore(url), settings.prices, parse_since(since), datetime.now(UTC)
    )
    if as_json:
        echo(json.dumps(report.as_json()))
        return
    rows = [(name, *cells(f)) for name, f in by_cost(report.groups[by])]
    rows.append(("total", *cells(report.totals)))
    header = (by, *COLUMNS)
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        echo(
            "  ".join(
                str(cell).rjust(w) if i else str(cell).ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    echo(
        f"builds: {report.builds_succeeded} succeeded, {report.builds_failed} failed; "
        f"prompt cache saved ${report.totals.prompt_cache_saved_usd:.4f}, "
        f"result cache saved ${report.totals.result_cache_saved_usd:.4f}"
    )
