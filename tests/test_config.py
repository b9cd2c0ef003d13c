from __future__ import annotations

import re
from pathlib import Path

import pytest

from sheen_pipeline.config import ConfigError, Settings
from tests.conftest import REPO_ROOT
from tests.support.processes import sheen, sheen_cli_env

CONFIG = REPO_ROOT / "sheen_pipeline" / "config"
CONFIGURATION_DOC = REPO_ROOT / "docs" / "configuration.md"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SHEEN_PREVIEW_PORT", "eighty", "SHEEN_PREVIEW_PORT must be a whole number, got 'eighty'"),
        ("SHEEN_PREVIEW_PORT", "0", "SHEEN_PREVIEW_PORT must be at least 1, got '0'"),
        ("SHEEN_TASK_RETRY_DELAY_S", "soon", "SHEEN_TASK_RETRY_DELAY_S must be a number"),
        ("SHEEN_SEQUENTIAL_FALLBACK", "maybe", "SHEEN_SEQUENTIAL_FALLBACK must be true or false"),
        ("SHEEN_PROVIDER", "mine:Factory", "SHEEN_PROVIDER must be one of '', 'anthropic'"),
        ("SHEEN_PROVIDER", "anthropic", "^SHEEN_PROVIDER=anthropic needs ANTHROPIC_API_KEY$"),
        ("SHEEN_PROVIDER", "openai", "^SHEEN_PROVIDER=openai needs SHEEN_OPENAI_BASE_URL"),
    ],
)
def test_bad_values_are_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        Settings.from_env()


def test_task_timeouts_per_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEEN_TASK_TIMEOUT_S", "45")
    monkeypatch.setenv("SHEEN_TASK_TIMEOUTS", '{"install_deps": 300}')
    settings = Settings.from_env()
    assert settings.task_timeout_for("install_deps") == 300
    assert settings.task_timeout_for("create_file") == 45
    monkeypatch.setenv("SHEEN_TASK_TIMEOUTS", '{"install_deps": "long"}')
    with pytest.raises(ConfigError, match="SHEEN_TASK_TIMEOUTS must map task types to whole"):
        Settings.from_env()


def test_secrets_stay_out_of_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-hidden-123456789")
    monkeypatch.setenv("SHEEN_WEBHOOK_SECRET", "whsec-hidden")
    settings = Settings.from_env()
    assert "hidden" not in repr(settings)
    assert set(settings.secrets) == {"sk-ant-hidden-123456789", "whsec-hidden"}


@pytest.mark.parametrize(
    "prices", ['{"m": 3}', '{"m": {"input": "x", "output": 1}}', '{"m": {"input": 3}}']
)
def test_a_malformed_price_table_stops_the_cli_before_it_starts(
    tmp_path: Path, prices: str
) -> None:
    env = sheen_cli_env(tmp_path, SHEEN_PRICES=prices)
    result = sheen(env, "status")
    assert result.returncode == 2
    assert "SHEEN_PRICES is not a valid price table" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_setting_is_in_the_configuration_table() -> None:
    """docs/configuration.md's table documents every variable the settings read."""
    source = "".join(path.read_text() for path in CONFIG.glob("*.py"))
    read = set(re.findall(r'"((?:SHEEN|CLOUDFLARE|ANTHROPIC)_[A-Z0-9_]+)"', source))
    table = CONFIGURATION_DOC.read_text().split("## Production back ends", 1)[0]
    missing = sorted(name for name in read if f"`{name}`" not in table)
    assert read and missing == []
