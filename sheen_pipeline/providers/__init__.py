"""LLM providers behind one interface, chosen by configuration."""

from __future__ import annotations

import importlib
import logging
from functools import cache
from typing import TYPE_CHECKING

from sheen_pipeline.config import ConfigError, Settings
from sheen_pipeline.config.prices import price_of
from sheen_pipeline.providers.base import Provider

if TYPE_CHECKING:
    from sheen_pipeline.providers.llm import ChatTransport as LLMTransport

log = logging.getLogger(__name__)


@cache
def _announce(message: str) -> None:
    """Once per process, so a build's log says it once, not once per task."""
    log.info(message)


def provider_name(settings: Settings) -> str:
    """SHEEN_PROVIDER, or Anthropic when ANTHROPIC_API_KEY is set, or offline."""
    return settings.provider or ("anthropic" if settings.anthropic_api_key else "offline")


def select_provider(settings: Settings) -> Provider:
    if settings.test_provider:
        return _test_provider(settings.test_provider)
    name = provider_name(settings)
    if name == "offline":
        from sheen_pipeline.providers.offline import OfflineProvider

        _announce("Using the offline provider: deterministic, no network, no API key needed.")
        return OfflineProvider()
    from sheen_pipeline.budgets import BudgetBook, Meter
    from sheen_pipeline.providers.llm import LLMProvider
    from sheen_pipeline.store.engines import engine_for

    transport = _anthropic(settings) if name == "anthropic" else _openai(settings)
    _announce(f"Using the {name} provider with model {transport.model}.")
    book = BudgetBook(engine_for(settings.database_url), settings.budgets)
    meter = Meter(book, transport.name, transport.model)
    return LLMProvider(transport, price_of(settings.prices, transport.model), meter)


def _test_provider(factory_path: str) -> Provider:
    """SHEEN_TEST_PROVIDER's 'module:Factory', the way a test reaches a process it did not
    start in Python."""
    module_name, _, attribute = factory_path.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(
            f"SHEEN_TEST_PROVIDER={factory_path!r} cannot be loaded: {error}"
        ) from None
    provider: Provider = factory()
    return provider


def _anthropic(settings: Settings) -> LLMTransport:
    from sheen_pipeline.providers.anthropic_api import DEFAULT_MODEL, AnthropicTransport

    calls = settings.model_calls
    return AnthropicTransport(
        settings.anthropic_api_key, calls.model_copy(update={"model": calls.model or DEFAULT_MODEL})
    )


def _openai(settings: Settings) -> LLMTransport:
    from sheen_pipeline.providers.openai_api import OpenAICompatibleTransport

    return OpenAICompatibleTransport(
        settings.openai_base_url, settings.openai_api_key, settings.model_calls
    )
