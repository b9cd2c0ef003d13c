"""The `sheen` command: run builds and serve previews from a terminal."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from sheen_pipeline.config import ConfigError, Settings
from sheen_pipeline.models import InvalidRequest, parse_build_request


def _ensure_dagster_home(settings: Settings) -> None:
    """Use DAGSTER_HOME when set; else this folder's dagster.yaml; else SHEEN_HOME/dagster."""
    if os.environ.get("DAGSTER_HOME"):
        return
    home = Path.cwd() if Path("dagster.yaml").is_file() else settings.home / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    instance_config = home / "dagster.yaml"
    if not instance_config.exists():
        instance_config.write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home.resolve())


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as error:
        raise click.UsageError(str(error)) from None


@click.group()
def main() -> None:
    """sheen: turn a prompt into a planned, built and previewed site, on Dagster."""


@main.command()
@click.argument("prompt")
@click.option("--project-id", default="default", show_default=True)
@click.option("--user-id", default="anonymous", show_default=True)
@click.option("--framework", type=click.Choice(["static"]), default=None)
@click.option(
    "--json", "as_json", is_flag=True, help="End with one JSON line describing the build."
)
def build(prompt: str, project_id: str, user_id: str, framework: str | None, as_json: bool) -> None:
    """Plan, build and deploy PROMPT; prints progress, then the preview URL."""
    settings = _settings()
    try:
        request = parse_build_request(
            prompt=prompt, project_id=project_id, user_id=user_id, framework=framework
        )
    except InvalidRequest as error:
        raise click.UsageError(f"invalid build request: {error}") from None
    _ensure_dagster_home(settings)

    from dagster import DagsterInstance

    from sheen_pipeline.defs.local_runs import run_build
    from sheen_pipeline.pipeline import BuildPipeline

    def report(line: str) -> None:
        click.echo(line, err=as_json)

    with DagsterInstance.get() as instance:
        outcome = run_build(instance, BuildPipeline(settings), request, report)
    if outcome.status == "succeeded":
        report(f"build {outcome.build_id} succeeded: {len(outcome.files)} files")
        report(f"preview: {outcome.preview_url}")
    else:
        report(f"build {outcome.build_id or '(none)'} failed: {outcome.error}")
    if as_json:
        click.echo(json.dumps(outcome.as_json()))
    sys.exit(0 if outcome.status == "succeeded" else 1)


@main.command()
@click.option("--host", default=None, help="Defaults to SHEEN_PREVIEW_HOST (127.0.0.1).")
@click.option("--port", type=int, default=None, help="Defaults to SHEEN_PREVIEW_PORT (8787).")
def serve(host: str | None, port: int | None) -> None:
    """Serve every deployed preview under /p/<build_id>/ until Ctrl-C."""
    import uvicorn

    from sheen_pipeline.api.preview import create_preview_app

    settings = _settings()
    host = host or settings.preview_host
    port = port or settings.preview_port
    click.echo(f"Serving previews at http://{host}:{port}/p/<build_id>/ (Ctrl-C stops)")
    uvicorn.run(
        create_preview_app(settings.previews_dir), host=host, port=port, log_level="warning"
    )
