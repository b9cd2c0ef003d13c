"""The `provider` resource: the model provider the settings choose (SHEEN_PROVIDER, the API key,
SHEEN_MODEL), nested in the `sheen` resource. Dagster resolves a nested resource by the object
itself, not by its key, so a test hands in a fake the way nested resources are swapped:
`resources={"sheen": BuildServiceResource(settings=SettingsResource(), provider=Fake())}`."""

from dagster import ConfigurableResource, InitResourceContext

from sheen_pipeline.defs.settings import SettingsResource
from sheen_pipeline.providers import select_provider
from sheen_pipeline.providers.base import Provider


class ProviderResource(ConfigurableResource[Provider]):
    """Chooses the provider from the `settings` resource once per run (or sensor tick); as
    Dagster documents for vending another object, `create_resource` returns the provider."""

    settings: SettingsResource

    def create_resource(self, context: InitResourceContext) -> Provider:
        return select_provider(self.settings.get())
