from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sheen_pipeline.config import Settings
from sheen_pipeline.providers import select_provider
from sheen_pipeline.providers.llm import LLMProvider
from tests.support.fake_llm import AnthropicWire, FakeLLMServer, OpenAIWire

ANTHROPIC_KEY = "sk-ant-test-0123456789abcdef"
OPENAI_KEY = "local-secret-key-0123456789"
LOCAL_MODEL = "llama-3.3-70b"


@dataclass
class LLM:
    kind: str
    server: FakeLLMServer
    key: str

    def provider(self) -> LLMProvider:
        provider = select_provider(Settings.from_env())
        assert isinstance(provider, LLMProvider)
        return provider


def llm_env(kind: str, server: FakeLLMServer) -> dict[str, str]:
    if kind == "anthropic":
        return {"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "ANTHROPIC_BASE_URL": server.base_url}
    return {
        "SHEEN_PROVIDER": "openai",
        "SHEEN_OPENAI_BASE_URL": server.base_url + "/v1",
        "SHEEN_OPENAI_API_KEY": OPENAI_KEY,
        "SHEEN_MODEL": LOCAL_MODEL,
        # Same prices as the default Sonnet entry, through the override path.
        "SHEEN_PRICES": json.dumps({LOCAL_MODEL: {"input": 3, "output": 15}}),
    }


@pytest.fixture(params=["anthropic", "openai"])
def llm(
    request: pytest.FixtureRequest, sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LLM]:
    kind: str = request.param
    wire = AnthropicWire() if kind == "anthropic" else OpenAIWire()
    with FakeLLMServer(wire) as server:
        for name in ("ANTHROPIC_API_KEY", "SHEEN_MODEL", "SHEEN_PRICES"):
            monkeypatch.delenv(name, raising=False)
        for name, value in llm_env(kind, server).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("SHEEN_LLM_MAX_RETRIES", "2")
        yield LLM(kind, server, ANTHROPIC_KEY if kind == "anthropic" else OPENAI_KEY)
