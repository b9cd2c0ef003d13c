"""Step outputs go to the shared artifact store (SHEEN_ARTIFACT_STORE), never to a step's local
disk: with the Celery executor each step may run on another machine, and a re-execution from
failure may run anywhere."""

import pickle
from functools import cache
from typing import Any

from dagster import ConfigurableIOManager, InputContext, OutputContext

from sheen_pipeline.defs.settings import SettingsResource
from sheen_pipeline.store.blobs import open_blobs
from sheen_pipeline.store.engines import engine_for
from sheen_pipeline.store.step_outputs import StepOutputs


@cache
def _step_outputs(database_url: str, artifact_store: str) -> StepOutputs:
    engine = engine_for(database_url)
    return StepOutputs(engine, open_blobs(artifact_store, engine))


class SharedStepOutputs(ConfigurableIOManager):
    """Outputs are pickled (they are the pipeline's own pydantic models and lists), like
    Dagster's filesystem and S3 IO managers do, into a store only the pipeline writes; where
    that store is comes from the run's `settings` resource."""

    settings: SettingsResource

    def _outputs(self) -> StepOutputs:
        settings = self.settings.get()
        return _step_outputs(settings.database_url, settings.artifact_store)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        self._outputs().put("/".join(context.get_identifier()), pickle.dumps(obj))

    def load_input(self, context: InputContext) -> Any:
        return pickle.loads(self._outputs().get("/".join(context.get_identifier())))
