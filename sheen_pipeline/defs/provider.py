"""The `provider` resource: the model provider the settings choose (SHEEN_PROVIDER, the API key,
SHEEN_MODEL). A test hands in its own provider object under the same key, as Dagster's examples
do: `execute_in_process(resources={"provider": FakeProvider()})`."""

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
