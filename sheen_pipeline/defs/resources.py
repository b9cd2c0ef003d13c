"""The resource ops and sensors are handed: the build service, made once per run (or sensor
tick) in the resource lifecycle. Its fields override their environment variables; left empty,
the variables (or their defaults) apply, read when the run starts, in the process that runs it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from sheen_pipeline.config import Settings
from sheen_pipeline.defs.io_manager import SharedStepOutputs
from sheen_pipeline.liveness import heartbeat
from sheen_pipeline.logs import configure_logging
from sheen_pipeline.runs.tags import BUILD_ID
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.builds import BuildStore

# The variable each field overrides; the UI lists them as the variables the resource reads.
# The other SHEEN_* variables, and every secret, are read from the environment only, so a secret
# never appears in run config.
FIELD_ENV_VARS: Mapping[str, str] = {
    "home": "SHEEN_HOME",
    "database_url": "SHEEN_DATABASE_URL",
    "provider": "SHEEN_PROVIDER",
    "model": "SHEEN_MODEL",
    "require_plan_approval": "SHEEN_REQUIRE_PLAN_APPROVAL",
}


class BuildServiceResource(ConfigurableResource):  # type: ignore[type-arg]
    """An empty field leaves its variable (or the variable's default) in charge."""

    home: str = ""
    database_url: str = ""
    provider: str = ""
    model: str = ""
    require_plan_approval: str = ""

    _settings: Settings | None = PrivateAttr(default=None)
    _service: BuildService | None = PrivateAttr(default=None)
    _heartbeat: ExitStack = PrivateAttr(default_factory=ExitStack)

    def settings(self) -> Settings:
        fields = {FIELD_ENV_VARS[name]: getattr(self, name) for name in FIELD_ENV_VARS}
        return Settings.from_env({**os.environ, **{k: v for k, v in fields.items() if v}})

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._settings = self.settings()
        configure_logging(self._settings.secrets)
        run = context.dagster_run
        if run is not None and BUILD_ID in run.tags:  # this process runs the build: say so
            store = BuildStore(self._settings.database_url)
            timeout_s = self._settings.build_heartbeat_timeout_s
            self._heartbeat.enter_context(heartbeat(store, run.tags[BUILD_ID], timeout_s))

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self._heartbeat.close()

    @property
    def service(self) -> BuildService:
        """Made on first use, so a step or sensor that needs only settings starts nothing."""
        if self._service is None:
            if self._settings is None:
                raise RuntimeError("BuildServiceResource is used outside a Dagster run or sensor")
            self._service = BuildService(self._settings)
        return self._service


def build_service_resource() -> BuildServiceResource:
    """Not bound to `EnvVar`s: an `EnvVar` fails the run when its variable is unset, and every
    one of these settings has a default when it is unset."""
    return BuildServiceResource()


def pipeline_resources() -> dict[str, Any]:
    """What every job of the pipeline is handed: the build service, and step outputs kept in
    the shared artifact store (a step may run on any machine)."""
    return {"sheen": build_service_resource(), "io_manager": SharedStepOutputs()}
