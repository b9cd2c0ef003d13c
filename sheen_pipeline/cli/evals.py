"""`sheen eval`: how many of the apps the builder makes actually work, on a suite of requests
with hidden acceptance steps; `sheen eval compare` says which cases changed between two runs."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

import click

from sheen_pipeline.cli.app import ensure_dagster_home, load_settings, main
from sheen_pipeline.terminal import echo


def _usd(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not an amount in USD") from None
    if not amount.is_finite() or amount < 0:
        raise click.BadParameter(f"{value!r} is not an amount in USD")
    return amount


@main.group("eval", invoke_without_command=True)
@click.option("--suite", default="core", show_default=True, help="A suite in evals/, or a file.")
@click.option("--model", default="", help="The model to evaluate (SHEEN_MODEL otherwise).")
@click.option(
    "--provider",
    type=click.Choice(["anthropic", "openai", "offline"]),
    default=None,
    help="The provider (SHEEN_PROVIDER otherwise).",
)
@click.option("--cases", default="", help="Only these case ids, comma-separated.")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--budget", default=None, help="Start no case that would take spending past USD.")
@click.option("--json", "as_json", is_flag=True, help="End with the report as one JSON line.")
@click.pass_context
def evaluate(
    context: click.Context,
    suite: str,
    model: str,
    provider: str | None,
    cases: str,
    repeat: int,
    budget: str | None,
    as_json: bool,
) -> None:
    """Build each case of a suite through the normal pipeline (real Dagster runs, checks, repair
    and cost), take its hidden steps on the preview in a browser, and report per case and in
    total: pass rate, step pass rate, cost per passing app, time to preview, repairs."""
    if context.invoked_subcommand is not None:
        return
    from dagster import DagsterInstance

    from sheen_pipeline.evals.suite import SuiteError
    from sheen_pipeline.runs.evaluate import EvalOrder, evaluate

    settings = load_settings()
    ensure_dagster_home(settings)
    order = EvalOrder(
        suite=suite,
        model=model,
        provider=provider or "",
        cases=tuple(c.strip() for c in cases.split(",") if c.strip()),
        repeat=repeat,
        budget_usd=_usd(budget),
    )
    with DagsterInstance.get() as instance:
        try:
            report = evaluate(instance, order, lambda line: echo(line, err=as_json))
        except SuiteError as error:
            raise click.UsageError(str(error)) from None
    if as_json:
        echo(json.dumps(report.as_json()))
        return
    echo(report.table())
    echo(report.summary())
    echo(f"evaluation {report.eval_id} of {report.suite} on {report.provider} {report.model}")


@evaluate.command()
@click.argument("before")
@click.argument("after")
def compare(before: str, after: str) -> None:
    """The cases whose outcome changed from evaluation BEFORE to AFTER (ids as printed)."""
    from sheen_pipeline.evals.report import compare as changed_cases
    from sheen_pipeline.evals.saved import load_report

    home = load_settings().home
    try:
        changed = changed_cases(load_report(home, before), load_report(home, after))
    except LookupError as error:
        raise click.UsageError(str(error)) from None
    for line in changed or ["no case changed"]:
        echo(line)
