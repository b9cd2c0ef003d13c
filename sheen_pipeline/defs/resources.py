"""The resource ops and sensors are handed: the build service, made once per run (or sensor
tick) in the resource lifecycle from its fields, each bound to its environment variable."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster import ConfigurableResource, EnvVar, InitResourceContext
from pydantic import PrivateAttr

from sheen_pipeline.config import Settings
from sheen_pipeline.logs import configure_logging
from sheen_pipeline.service import BuildService

# Fields shown (by variable name, never by value) on the resource in the UI. Other SHEEN_*
# variables keep their defaults or are read from the environment by Settings.
FIELD_ENV_VARS: Mapping[str, str] = {
    "home": "SHEEN_HOME",
    "database_url": "SHEEN_DATABASE_URL",
    "provider": "SHEEN_PROVIDER",
    "model": "SHEEN_MODEL",
    "require_plan_approval": "SHEEN_REQUIRE_PLAN_APPROVAL",
    "anthropic_api_key": "ANTHROPIC_API_KEY",
}


class BuildServiceResource(ConfigurableResource):  # type: ignore[type-arg]
    """An empty field keeps the setting's default."""

    home: str = ""
    database_url: str = ""
    provider: str = ""
    model: str = ""
    require_plan_approval: str = ""
    anthropic_api_key: str = ""

    _service: BuildService | None = PrivateAttr(default=None)

    def settings(self) -> Settings:
        fields = {FIELD_ENV_VARS[name]: getattr(self, name) for name in FIELD_ENV_VARS}
        return Settings.from_env({**os.environ, **{k: v for k, v in fields.items() if v}})

    def setup_for_execution(self, context: InitResourceContext) -> None:
        settings = self.settings()
        configure_logging(settings.secrets)
        self._service = BuildService(settings)

    @property
    def service(self) -> BuildService:
        if self._service is None:
            raise RuntimeError("BuildServiceResource is used outside a Dagster run or sensor")
        return self._service


def build_service_resource() -> BuildServiceResource:
    """The resource with every field that has its variable set bound to it (`EnvVar`), so the
    UI shows which variables configure it; unset ones keep their defaults."""
    bound = {name: EnvVar(var) for name, var in FIELD_ENV_VARS.items() if os.environ.get(var)}
    return BuildServiceResource(**bound)
