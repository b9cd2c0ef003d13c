"""LLM providers behind one interface, chosen by configuration."""

from __future__ import annotations

import importlib
import logging
from functools import cache
from typing import TYPE_CHECKING

from sheen_pipeline.config import ConfigError, Settings
from sheen_pipeline.providers.base import Provider

if TYPE_CHECKING:
    from sheen_pipeline.providers.llm import ChatTransport as LLMTransport

log = logging.getLogger(__name__)

PROVIDER_NAMES = ("anthropic", "openai", "offline")


@cache
def _announce(message: str) -> None:
    """Once per process, so a build's log says it once, not once per task."""
    log.info(message)


def provider_name(settings: Settings) -> str:
    """SHEEN_PROVIDER, or Anthropic when ANTHROPIC_API_KEY is set, or offline."""
    return settings.provider or ("anthropic" if settings.anthropic_api_key else "offline")


def select_provider(settings: Settings) -> Provider:
    name = provider_name(settings)
    if name == "offline":
        from sheen_pipeline.providers.offline import OfflineProvider

        _announce("Using the offline provider: deterministic, no network, no API key needed.")
        return OfflineProvider()
    if name in ("anthropic", "openai"):
        from sheen_pipeline.budgets import BudgetBook, Meter
        from sheen_pipeline.providers.llm import LLMProvider
        from sheen_pipeline.store.builds import engine_for

        transport = _anthropic(settings) if name == "anthropic" else _openai(settings)
        _announce(f"Using the {name} provider with model {transport.model}.")
        book = BudgetBook(engine_for(settings.database_url), settings.budgets)
        meter = Meter(book, transport.name, transport.model)
        return LLMProvider(transport, settings.prices.get(transport.model), meter)
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise ConfigError(f"SHEEN_PROVIDER={name!r} cannot be loaded: {error}") from None
        provider: Provider = factory()
        return provider
    raise ConfigError(
        f"SHEEN_PROVIDER must be one of {', '.join(PROVIDER_NAMES)} or 'module:Factory', got {name!r}"
    )


def _anthropic(settings: Settings) -> LLMTransport:
    from sheen_pipeline.providers.anthropic_api import DEFAULT_MODEL, AnthropicTransport

    if not settings.anthropic_api_key:
        raise ConfigError("SHEEN_PROVIDER=anthropic needs ANTHROPIC_API_KEY")
    calls = settings.model_calls
    return AnthropicTransport(
        settings.anthropic_api_key, calls.model_copy(update={"model": calls.model or DEFAULT_MODEL})
    )


def _openai(settings: Settings) -> LLMTransport:
    from sheen_pipeline.providers.openai_api import OpenAICompatibleTransport

    if not settings.openai_base_url or not settings.model_calls.model:
        raise ConfigError(
            "SHEEN_PROVIDER=openai needs SHEEN_OPENAI_BASE_URL (for example "
            "http://127.0.0.1:11434/v1) and SHEEN_MODEL"
        )
    return OpenAICompatibleTransport(
        settings.openai_base_url, settings.openai_api_key, settings.model_calls
    )
