"""The `sheen` command group and what its commands share: settings checked before anything starts,
the Dagster home, a build request from arguments, and how a build command ends."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from sheen_pipeline.config import ConfigError, Settings
from sheen_pipeline.logs import configure_logging
from sheen_pipeline.models import BuildRequest, InvalidRequest, parse_build_request
from sheen_pipeline.terminal import echo, printable

if TYPE_CHECKING:
    from sheen_pipeline.runs.local import BuildOutcome


DEFAULT_DAGSTER_HOME = Path(".dagster")
PROJECT_INSTANCE_CONFIG = Path("dagster.yaml")
# The instance of a Dagster home outside a checkout: SQLite storage, with every run's events in
# one file, and each storage written through one engine (as the checkout's dagster.yaml has them).
STANDALONE_INSTANCE_CONFIG = """telemetry:
  enabled: false
event_log_storage:
  module: sheen_pipeline.runs.sqlite_events
  class: SqliteEventLog
  config:
    base_dir:
      env: DAGSTER_HOME
run_storage:
  module: sheen_pipeline.runs.sqlite_storage
  class: SqliteRuns
  config:
    dagster_home:
      env: DAGSTER_HOME
schedule_storage:
  module: sheen_pipeline.runs.sqlite_storage
  class: SqliteSchedules
  config:
    dagster_home:
      env: DAGSTER_HOME
"""


def ensure_dagster_home(settings: Settings) -> None:
    """DAGSTER_HOME when set; else .dagster/ in a checkout (a folder with dagster.yaml), else
    SHEEN_HOME/dagster. The instance's files stay out of the source: .dagster/ gets the
    checkout's dagster.yaml, kept in step with it; another home without one gets
    STANDALONE_INSTANCE_CONFIG. Its storage is initialised once, whichever command comes first."""
    in_checkout = PROJECT_INSTANCE_CONFIG.is_file()
    fallback = DEFAULT_DAGSTER_HOME if in_checkout else settings.home / "dagster"
    home = Path(os.environ.get("DAGSTER_HOME") or fallback).resolve()
    home.mkdir(parents=True, exist_ok=True)
    instance_config = home / "dagster.yaml"
    if in_checkout and home == DEFAULT_DAGSTER_HOME.resolve():
        template = PROJECT_INSTANCE_CONFIG.read_text()
        if not instance_config.exists() or instance_config.read_text() != template:
            instance_config.write_text(template)
    elif not instance_config.exists():
        instance_config.write_text(STANDALONE_INSTANCE_CONFIG)
    os.environ["DAGSTER_HOME"] = str(home)
    _initialise_storage_once(home)
    if settings.executor == "celery":
        _refuse_a_local_instance(home)


def _refuse_a_local_instance(home: Path) -> None:
    """Celery workers on other machines record their steps in this instance: one stored in
    SQLite on this disk would work on one machine and lose every run on two."""
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        storage = type(instance.run_storage).__name__
    if storage.startswith("Sqlite"):
        raise click.UsageError(
            "SHEEN_EXECUTOR=celery needs the Dagster instance the workers share: "
            f"DAGSTER_HOME ({home}) must hold a dagster.yaml storing runs in Postgres (as "
            "deploy/celery/dagster.yaml does, with SHEEN_DAGSTER_POSTGRES_URL); this one stores "
            "them in SQLite on this disk"
        )


def _initialise_storage_once(home: Path) -> None:
    """Dagster creates and migrates its storage on first open; two commands doing that at once
    (`sheen serve` and `sheen build` on a fresh home) left the schedule database with two
    alembic heads. The first open happens under a lock, and is remembered."""
    import fcntl

    from dagster import DagsterInstance

    ready = home / ".sheen-storage-ready"
    if ready.exists():
        return
    with open(home / ".sheen-storage.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return
        with DagsterInstance.get() as instance:
            instance.run_storage.get_runs(limit=1)
            instance.event_log_storage.get_logs_for_run("none", limit=1)
            instance.schedule_storage.all_instigator_state()  # type: ignore[union-attr]
        ready.touch()


def load_settings() -> Settings:
    """The settings, checked before anything starts; an error names the variable."""
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        raise click.UsageError(str(error)) from None
    configure_logging(settings.secrets)
    return settings


@click.group()
def main() -> None:
    """sheen: turn a prompt into a planned, built and previewed site, on Dagster."""


# A request field whose option reads better under another name.
OPTION_NAMES = {"base_build_id": "--from"}


def request_arguments(command: Callable[..., None]) -> Callable[..., None]:
    """PROMPT and the request options, validated into one BuildRequest argument `request`."""

    def to_request(**values: object) -> None:
        fields = {name: values.pop(name) for name in BuildRequest.model_fields}
        try:
            request = parse_build_request(**fields)
        except InvalidRequest as error:
            raise click.UsageError(f"invalid build request: {error}") from None
        command(request=request, **values)

    functools.update_wrapper(to_request, command)  # name, help, and options declared below
    for name, field in reversed(BuildRequest.model_fields.items()):
        if field.is_required():
            to_request = click.argument(name)(to_request)
            continue
        choices = BuildRequest.choices(name)
        to_request = click.option(
            OPTION_NAMES.get(name, "--" + name.replace("_", "-")),
            name,
            type=click.Choice(choices) if choices else str,
            default=field.default,
            show_default=field.default is not None,
            help=field.description,
        )(to_request)
    return to_request


def accepted(accept: Callable[[BuildRequest], BuildRequest], request: BuildRequest) -> BuildRequest:
    """The request as accepted (its base resolved), or a usage error saying why not."""
    try:
        return accept(request)
    except InvalidRequest as error:
        raise click.UsageError(f"invalid build request: {printable(str(error))}") from None


def finish(outcome: BuildOutcome, report: Callable[[str], None], as_json: bool) -> NoReturn:
    """Last lines and exit code: 0 succeeded, 3 waiting for approval, 4 blocked, 1 failed."""
    if outcome.status == "succeeded":
        report(f"build {outcome.build_id} succeeded: {len(outcome.files)} files")
        report(f"preview: {outcome.preview_url}")
    elif outcome.status == "awaiting_approval":
        report(f"build {outcome.build_id} awaits approval: sheen approve {outcome.build_id}")
    elif outcome.status == "blocked":
        report(f"build {outcome.build_id} is blocked: {outcome.error}")
    else:
        report(f"build {outcome.build_id} failed: {outcome.error}")
    if as_json:
        echo(json.dumps(outcome.as_json()))
    sys.exit({"succeeded": 0, "awaiting_approval": 3, "blocked": 4}.get(outcome.status, 1))
