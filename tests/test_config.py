from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sheen_pipeline.config import ConfigError, Settings
from tests.conftest import REPO_ROOT
from tests.support.processes import sheen, sheen_cli_env, sheen_here

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
        ("SHEEN_PUBLIC_URL", "previews.example.com", "SHEEN_PUBLIC_URL must be an http"),
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


def test_celery_mode_refuses_what_other_machines_cannot_share(
    database_url: str, tmp_path: Path
) -> None:
    """With SQLite as the app database, the settings are refused; with Postgres, a Dagster
    instance stored in SQLite on this disk (DAGSTER_HOME without the shared dagster.yaml) is
    refused before any run, each naming the setting."""
    env = sheen_cli_env(tmp_path, SHEEN_EXECUTOR="celery", SHEEN_DATABASE_URL=database_url)
    refused = sheen_here(env, "build", "a site for a bakery")
    assert refused.returncode == 2
    if database_url.startswith("sqlite"):
        assert "SHEEN_DATABASE_URL must be a database they share (Postgres)" in refused.stderr
    else:
        assert "DAGSTER_HOME" in refused.stderr and "stores them in SQLite" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_preview_urls_come_from_the_public_base_not_the_bind_address(tmp_path: Path) -> None:
    """A worker binds to 0.0.0.0 and is reached through a proxy's name: what it reports is
    the public address."""
    env = sheen_cli_env(
        tmp_path, SHEEN_PREVIEW_HOST="0.0.0.0", SHEEN_PUBLIC_URL="https://previews.example.com"
    )
    built = json.loads(
        sheen_here(env, "build", "a site for a bakery", "--json").stdout.splitlines()[-1]
    )
    assert built["preview_url"] == f"https://previews.example.com/p/{built['build_id']}/"
    settings = Settings.from_env(env)
    assert settings.production_url("coffee") == "https://previews.example.com/prod/coffee/"


def test_settings_read_again_are_the_ones_validated_unless_what_they_depend_on_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs read settings for every step: the same variables give the settings validated
    before, while a changed variable, folder (a relative home) or price file is read anew."""
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"m": {"input": 1, "output": 2}}))
    monkeypatch.setenv("SHEEN_PRICES", str(prices))
    monkeypatch.setenv("SHEEN_HOME", "relative-home")
    monkeypatch.chdir(tmp_path)
    first = Settings.from_env()
    assert Settings.from_env() is first
    prices.write_text(json.dumps({"m": {"input": 10, "output": 20}}))
    rewritten = Settings.from_env()
    assert str(rewritten.prices["m"].input) == "10"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert Settings.from_env().home == tmp_path / "elsewhere" / "relative-home"
    monkeypatch.setenv("SHEEN_PREVIEW_PORT", "9999")
    assert Settings.from_env().preview_port == 9999
    monkeypatch.setenv("SHEEN_PREVIEW_PORT", "eighty")
    for _ in range(2):  # an error is raised every time, never remembered as settings
        with pytest.raises(ConfigError, match="SHEEN_PREVIEW_PORT"):
            Settings.from_env()
