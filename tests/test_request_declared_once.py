"""BuildRequest is the one definition of a request: every entry point takes its fields from it."""

from __future__ import annotations

import click

from sheen_pipeline.cli import main
from sheen_pipeline.defs.plan_job import REQUEST_CONFIG
from sheen_pipeline.models import BuildRequest, parse_build_request
from sheen_pipeline.store.requests import RequestStore, new_request_id


def test_the_launchpad_config_is_the_request_plus_a_build_id() -> None:
    assert set(REQUEST_CONFIG) == {*BuildRequest.model_fields, "build_id"}
    for name, field in BuildRequest.model_fields.items():
        assert REQUEST_CONFIG[name].description == field.description
        assert REQUEST_CONFIG[name].is_required == field.is_required()


def test_cli_arguments_are_the_request_fields() -> None:
    for command in ("build", "submit"):
        params = {p.name: p for p in main.commands[command].params}
        assert set(BuildRequest.model_fields) <= set(params)
        framework = params["framework"]
        assert isinstance(framework.type, click.Choice)
        assert tuple(framework.type.choices) == BuildRequest.choices("framework")


def test_a_stored_request_gives_back_its_fields(database_url: str) -> None:
    request = parse_build_request(prompt="a blog about tea", project_id="p1", framework="static")
    record = RequestStore(database_url).add(request, new_request_id(), "bfields")
    assert parse_build_request(**record.fields) == request
