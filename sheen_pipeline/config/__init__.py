"""Settings, read from the environment in one place (settings.py), and the tables they hold."""

from sheen_pipeline.config.errors import ConfigError
from sheen_pipeline.config.settings import (
    DEFAULT_NPM_REGISTRY,
    DeploySettings,
    FileLimits,
    ModelCalls,
    SandboxSettings,
    Settings,
    WebhookSettings,
)

__all__ = [
    "DEFAULT_NPM_REGISTRY",
    "ConfigError",
    "DeploySettings",
    "FileLimits",
    "ModelCalls",
    "SandboxSettings",
    "Settings",
    "WebhookSettings",
]
