"""The resources every job of the pipeline is handed: `settings` (the one place runs get
settings from), `provider` (the model provider), the build service ops and sensors use, and the
IO manager that keeps step outputs in the shared artifact store. All read the same `settings`
resource, so what is set on it in the Launchpad reaches the service and the step outputs
alike."""

from contextlib import ExitStack
from typing import Any

from dagster import ConfigurableResource, InitResourceContext, ResourceDependency
from pydantic import PrivateAttr

from sheen_pipeline.config import Settings
from sheen_pipeline.defs.io_manager import SharedStepOutputs
from sheen_pipeline.defs.provider import ProviderResource
from sheen_pipeline.defs.settings import SettingsResource
from sheen_pipeline.liveness import heartbeat
from sheen_pipeline.logs import configure_logging
from sheen_pipeline.providers.base import Provider
from sheen_pipeline.runs.tags import BUILD_ID
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.builds import BuildStore


class BuildServiceResource(ConfigurableResource):  # type: ignore[type-arg]
    """The build service, made once per run (or sensor tick) from the `settings` and `provider`
    resources; the run that executes a build's steps also keeps the build's heartbeat."""

    settings: SettingsResource
    provider: ResourceDependency[Provider]

    _settings: Settings | None = PrivateAttr(default=None)
    _service: BuildService | None = PrivateAttr(default=None)
    _heartbeat: ExitStack = PrivateAttr(default_factory=ExitStack)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._settings = self.settings.get()
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
            self._service = BuildService(self._settings, self.provider)
        return self._service


def pipeline_resources() -> dict[str, Any]:
    """What every job and sensor of the pipeline is handed. `settings` is configured at launch,
    and the provider, the service and the IO manager read that one resource."""
    settings = SettingsResource.configure_at_launch()
    provider = ProviderResource(settings=settings)
    return {
        "settings": settings,
        "provider": provider,
        "sheen": BuildServiceResource(settings=settings, provider=provider),
        "io_manager": SharedStepOutputs(settings=settings),
    }
