"""The `settings` resource: where a run gets its settings. Its fields are the ones worth setting
per run in the Launchpad; every other setting, and every secret, comes from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster import ConfigurableResource

from sheen_pipeline.config import Settings

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


class SettingsResource(ConfigurableResource):  # type: ignore[type-arg]
    """The settings of a run: an empty field leaves its variable (or the variable's default) in
    charge. Not bound to `EnvVar`s: an `EnvVar` fails the run when its variable is unset, and
    every one of these settings has a default when it is unset."""

    home: str = ""
    database_url: str = ""
    provider: str = ""
    model: str = ""
    require_plan_approval: str = ""

    def get(self) -> Settings:
        fields = {FIELD_ENV_VARS[name]: getattr(self, name) for name in FIELD_ENV_VARS}
        return Settings.from_env({**os.environ, **{k: v for k, v in fields.items() if v}})
