"""LLM providers behind one interface, chosen by configuration."""

from __future__ import annotations

import importlib
import logging
from functools import cache

from sheen_pipeline.config import ConfigError, Settings
from sheen_pipeline.providers.base import Provider

log = logging.getLogger(__name__)


@cache
def _announce_offline() -> None:
    """Once per process, so a build's log says it once, not once per task."""
    log.info("Using the offline provider: deterministic, no network, no API key needed.")


def select_provider(settings: Settings) -> Provider:
    """The provider named by SHEEN_PROVIDER: `offline` (the default) or `package.module:Factory`."""
    name = settings.provider or "offline"
    if name == "offline":
        from sheen_pipeline.providers.offline import OfflineProvider

        _announce_offline()
        return OfflineProvider()
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise ConfigError(f"SHEEN_PROVIDER={name!r} cannot be loaded: {error}") from None
        provider: Provider = factory()
        return provider
    raise ConfigError(f"SHEEN_PROVIDER must be 'offline' or 'module:Factory', got {name!r}")
