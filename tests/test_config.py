from __future__ import annotations

import pytest

from sheen_pipeline.config import ConfigError, Settings


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SHEEN_PREVIEW_PORT", "eighty", "SHEEN_PREVIEW_PORT must be a whole number, got 'eighty'"),
        ("SHEEN_PREVIEW_PORT", "0", "SHEEN_PREVIEW_PORT must be at least 1, got 0"),
        ("SHEEN_TASK_RETRY_DELAY_S", "soon", "SHEEN_TASK_RETRY_DELAY_S must be a number"),
        ("SHEEN_SEQUENTIAL_FALLBACK", "maybe", "SHEEN_SEQUENTIAL_FALLBACK must be true or false"),
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
    with pytest.raises(ConfigError, match="SHEEN_TASK_TIMEOUTS is not valid"):
        Settings.from_env().task_timeout_for("install_deps")


def test_secrets_stay_out_of_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-hidden-123456789")
    monkeypatch.setenv("SHEEN_WEBHOOK_SECRET", "whsec-hidden")
    settings = Settings.from_env()
    assert "hidden" not in repr(settings)
    assert set(settings.secrets) == {"sk-ant-hidden-123456789", "whsec-hidden"}
