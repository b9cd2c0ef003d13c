"""Settings read from the environment, in one place, so every process agrees on them."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from sheen_pipeline.models import MAX_REQUEST_BODY_BYTES

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A setting has a value the pipeline cannot use."""


N = TypeVar("N", int, float)


def _env_number(
    env: Mapping[str, str], name: str, default: N, kind: type[N], minimum: N, what: str
) -> N:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _env_int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    return _env_number(env, name, default, int, minimum, "a whole number")


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    return _env_number(env, name, default, float, 0.001, "a number")


DEFAULT_NPM_REGISTRY = "https://registry.npmjs.org/"


def _registry_url(raw: str) -> str:
    """SHEEN_NPM_REGISTRY: an http(s) URL without credentials, ending in '/'."""
    url = raw.strip() or DEFAULT_NPM_REGISTRY
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise ConfigError(f"SHEEN_NPM_REGISTRY must be an http(s) URL, got {url!r}")
    return url if url.endswith("/") else f"{url}/"


def _deploy_settings(env: Mapping[str, str]) -> DeploySettings:
    target = env.get("SHEEN_DEPLOY_TARGET", "").strip().lower() or "local"
    if target not in DEPLOY_TARGETS:
        raise ConfigError(
            f"SHEEN_DEPLOY_TARGET must be one of {', '.join(DEPLOY_TARGETS)}, got {target!r}"
        )
    return DeploySettings(
        target=target,
        cloudflare_api_token=env.get("CLOUDFLARE_API_TOKEN", "").strip(),
        cloudflare_account_id=env.get("CLOUDFLARE_ACCOUNT_ID", "").strip(),
        cloudflare_base_url=env.get("SHEEN_CLOUDFLARE_BASE_URL", "").strip(),
    )


EXECUTORS = ("async", "celery")


def _artifact_store(env: Mapping[str, str]) -> str:
    raw = env.get("SHEEN_ARTIFACT_STORE", "").strip() or "database"
    bucket = raw.removeprefix("s3://").partition("/")[0]
    if raw != "database" and not (raw.startswith("s3://") and bucket):
        raise ConfigError(
            f"SHEEN_ARTIFACT_STORE must be 'database' or s3://bucket[/prefix], got {raw!r}"
        )
    return raw


def _executor(env: Mapping[str, str]) -> str:
    raw = env.get("SHEEN_EXECUTOR", "").strip().lower() or "async"
    if raw not in EXECUTORS:
        raise ConfigError(f"SHEEN_EXECUTOR must be one of {', '.join(EXECUTORS)}, got {raw!r}")
    return raw


def _env_switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    """on/off (or true/false); empty means the default, not off."""
    raw = env.get(name, "").strip()
    return default if not raw else _env_bool({name: raw}, name, default)


def _env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class FileLimits:
    """What one build's generated files may add up to (counted on what is written), and what
    one build may deploy (counted on what is copied, build output included)."""

    max_file_bytes: int = 1_000_000
    max_files: int = 200
    max_total_bytes: int = 20_000_000
    max_deploy_files: int = 1000
    max_deploy_bytes: int = 50_000_000


@dataclass(frozen=True)
class ModelCalls:
    """How calls to a model are made; `model` empty means the provider's default."""

    model: str = ""
    max_tokens: int = 16000
    timeout_s: int = 120
    max_retries: int = 3


@dataclass(frozen=True)
class SandboxSettings:
    """How generated build commands are confined (see build/sandbox.py). Turning it off is for
    trusted local use only: generated code then runs as this process's user."""

    enabled: bool = True
    memory_mb: int = 2048
    max_processes: int = 256
    max_file_mb: int = 256


DEPLOY_TARGETS = ("local", "cloudflare")


@dataclass(frozen=True)
class DeploySettings:
    """Where previews go: `local` (sheen serve) or `cloudflare` (Workers static assets)."""

    target: str = "local"
    cloudflare_api_token: str = field(default="", repr=False)
    cloudflare_account_id: str = ""
    cloudflare_base_url: str = ""  # another endpoint speaking Cloudflare's API (tests)


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
SPEC_SCHEDULE = "0,5s,5m,30m,2h,5h,10h,10h"  # Standard Webhooks' recommended retry schedule


def parse_schedule(name: str, raw: str) -> tuple[float, ...]:
    """ "0,5s,5m,2h" -> (0, 5, 300, 7200): each attempt's delay after the one before failed."""
    delays = []
    for part in raw.split(","):
        text = part.strip().lower()
        unit = _UNITS.get(text[-1:]) if text else None
        number = text[:-1] if unit else text
        try:
            delay = float(number) * (unit or 1.0)
        except ValueError:
            raise ConfigError(
                f"{name} must be delays like {SPEC_SCHEDULE!r} (s, m or h), got {raw!r}"
            ) from None
        if delay < 0:
            raise ConfigError(f"{name} cannot hold a negative delay, got {raw!r}")
        delays.append(delay)
    if delays[0] != 0:
        raise ConfigError(f"{name} must start with 0 (the first attempt is immediate), got {raw!r}")
    return tuple(delays)


@dataclass(frozen=True)
class WebhookSettings:
    """Where build events are pushed and how hard delivery tries: attempt n happens
    schedule_s[n] seconds after attempt n-1 failed; while the receiver fails, the oldest waiting
    event is retried every probe_s, and its first success sends everything waiting at once."""

    url: str = ""
    secret: str = field(default="", repr=False)
    schedule_s: tuple[float, ...] = parse_schedule("SHEEN_WEBHOOK_SCHEDULE", SPEC_SCHEDULE)
    probe_s: float = 15.0
    lease_s: float = 5.0
    timeout_s: float = 5.0
    rate_per_s: int = 10

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.secret)


@dataclass(frozen=True)
class Settings:
    """Everything the pipeline reads from the environment."""

    home: Path
    database_url: str
    provider: str
    preview_host: str
    preview_port: int
    file_limits: FileLimits
    max_tasks: int
    sandbox: SandboxSettings
    deploy: DeploySettings
    preview_checks: bool
    npm_cache: str
    npm_registry: str
    repair_rounds: int
    max_cycle_edges_to_drop: int
    sequential_fallback: bool
    require_plan_approval: bool
    model_calls: ModelCalls
    openai_base_url: str
    prices: str
    budgets: str
    cost_anomaly_factor: float
    task_timeout_s: int
    task_timeouts: str
    build_timeout_s: int
    build_heartbeat_timeout_s: float
    task_retries: int
    task_retry_delay_s: float
    result_cache_ttl_s: int
    build_command_timeout_s: int
    plan_approval_ttl_s: int
    pool_plan_limit: int
    pool_llm_limit: int
    max_parallel_tasks: int
    artifact_store: str
    executor: str
    celery_broker: str
    celery_backend: str
    metrics_port: int
    dagster_webserver_url: str
    ui_reload_interval_s: float
    ui_job_window: int
    webhooks: WebhookSettings
    ingress_rate_per_min: int
    ingress_max_body_bytes: int
    ingress_body_timeout_s: float
    anthropic_api_key: str = field(repr=False)
    openai_api_key: str = field(repr=False)
    ingress_secret: str = field(repr=False)
    api_token: str = field(repr=False)

    @property
    def workspaces_dir(self) -> Path:
        return self.home / "workspaces"

    @property
    def dist_dir(self) -> Path:
        return self.home / "dist"

    def preview_url(self, build_id: str) -> str:
        return f"http://{self.preview_host}:{self.preview_port}/p/{build_id}/"

    @property
    def npm_cache_dir(self) -> Path:
        """Tarballs the pipeline fetched from the registry for any build (SHEEN_NPM_CACHE, else
        SHEEN_HOME/npm-cache); written by the pipeline only, never by a sandbox."""
        return Path(self.npm_cache) if self.npm_cache else self.home / "npm-cache"

    @property
    def screenshots_dir(self) -> Path:
        return self.home / "screenshots"

    def screenshot_url(self, build_id: str, name: str) -> str:
        return f"http://{self.preview_host}:{self.preview_port}/s/{build_id}/{name}.png"

    def production_url(self, project_id: str) -> str:
        """Where `sheen serve` serves a project's promoted build (the local target)."""
        return f"http://{self.preview_host}:{self.preview_port}/prod/{project_id}/"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """From `environ` (the process environment by default)."""
        env = os.environ if environ is None else environ
        home = Path(env.get("SHEEN_HOME") or ".sheen").expanduser().resolve()
        return cls(
            home=home,
            database_url=env.get("SHEEN_DATABASE_URL") or f"sqlite:///{home / 'sheen.db'}",
            provider=env.get("SHEEN_PROVIDER", "").strip(),
            preview_host=env.get("SHEEN_PREVIEW_HOST") or "127.0.0.1",
            preview_port=_env_int(env, "SHEEN_PREVIEW_PORT", 8787),
            file_limits=FileLimits(
                max_file_bytes=_env_int(env, "SHEEN_MAX_FILE_BYTES", 1_000_000),
                max_files=_env_int(env, "SHEEN_MAX_FILES", 200),
                max_total_bytes=_env_int(env, "SHEEN_MAX_TOTAL_BYTES", 20_000_000),
                max_deploy_files=_env_int(env, "SHEEN_MAX_DEPLOY_FILES", 1000),
                max_deploy_bytes=_env_int(env, "SHEEN_MAX_DEPLOY_BYTES", 50_000_000),
            ),
            max_tasks=_env_int(env, "SHEEN_MAX_TASKS", 40),
            deploy=_deploy_settings(env),
            preview_checks=_env_switch(env, "SHEEN_PREVIEW_CHECKS", True),
            npm_cache=env.get("SHEEN_NPM_CACHE", "").strip(),
            npm_registry=_registry_url(env.get("SHEEN_NPM_REGISTRY", "")),
            repair_rounds=_env_int(env, "SHEEN_REPAIR_ROUNDS", 1, minimum=0),
            sandbox=SandboxSettings(
                enabled=_env_switch(env, "SHEEN_SANDBOX", True),
                memory_mb=_env_int(env, "SHEEN_SANDBOX_MEMORY_MB", 2048),
                max_processes=_env_int(env, "SHEEN_SANDBOX_MAX_PROCESSES", 256),
                max_file_mb=_env_int(env, "SHEEN_SANDBOX_MAX_FILE_MB", 256),
            ),
            max_cycle_edges_to_drop=_env_int(env, "SHEEN_MAX_CYCLE_EDGES_TO_DROP", 3, minimum=0),
            sequential_fallback=_env_bool(env, "SHEEN_SEQUENTIAL_FALLBACK", True),
            require_plan_approval=_env_bool(env, "SHEEN_REQUIRE_PLAN_APPROVAL", False),
            model_calls=ModelCalls(
                model=env.get("SHEEN_MODEL", "").strip(),
                max_tokens=_env_int(env, "SHEEN_MAX_TOKENS", 16000),
                timeout_s=_env_int(env, "SHEEN_LLM_TIMEOUT_S", 120),
                max_retries=_env_int(env, "SHEEN_LLM_MAX_RETRIES", 3, minimum=0),
            ),
            openai_base_url=env.get("SHEEN_OPENAI_BASE_URL", "").strip(),
            prices=env.get("SHEEN_PRICES", ""),
            budgets=env.get("SHEEN_BUDGETS", ""),
            cost_anomaly_factor=_env_float(env, "SHEEN_COST_ANOMALY_FACTOR", 3.0),
            anthropic_api_key=env.get("ANTHROPIC_API_KEY", "").strip(),
            openai_api_key=env.get("SHEEN_OPENAI_API_KEY", "").strip(),
            task_timeout_s=_env_int(env, "SHEEN_TASK_TIMEOUT_S", 60),
            task_timeouts=env.get("SHEEN_TASK_TIMEOUTS", ""),
            build_timeout_s=_env_int(env, "SHEEN_BUILD_TIMEOUT_S", 900),
            build_heartbeat_timeout_s=_env_float(env, "SHEEN_BUILD_HEARTBEAT_TIMEOUT_S", 60.0),
            task_retries=_env_int(env, "SHEEN_TASK_RETRIES", 3, minimum=0),
            task_retry_delay_s=_env_float(env, "SHEEN_TASK_RETRY_DELAY_S", 2.0),
            result_cache_ttl_s=_env_int(env, "SHEEN_RESULT_CACHE_TTL_S", 3600, minimum=0),
            build_command_timeout_s=_env_int(env, "SHEEN_BUILD_COMMAND_TIMEOUT_S", 300),
            plan_approval_ttl_s=_env_int(env, "SHEEN_PLAN_APPROVAL_TTL_S", 300),
            pool_plan_limit=_env_int(env, "SHEEN_POOL_PLAN_LIMIT", 2),
            pool_llm_limit=_env_int(env, "SHEEN_POOL_LLM_LIMIT", 5),
            max_parallel_tasks=_env_int(env, "SHEEN_MAX_PARALLEL_TASKS", 5),
            artifact_store=_artifact_store(env),
            executor=_executor(env),
            celery_broker=env.get("SHEEN_CELERY_BROKER", "").strip()
            or "amqp://guest:guest@127.0.0.1:5672//",
            celery_backend=env.get("SHEEN_CELERY_BACKEND", "").strip() or "rpc://",
            metrics_port=_env_int(env, "SHEEN_WORKER_METRICS_PORT", 9108, minimum=0),
            dagster_webserver_url=env.get("SHEEN_DAGSTER_WEBSERVER_URL", "").strip(),
            ui_reload_interval_s=_env_float(env, "SHEEN_UI_RELOAD_INTERVAL_S", 30.0),
            ui_job_window=_env_int(env, "SHEEN_UI_JOB_WINDOW", 200),
            webhooks=WebhookSettings(
                url=env.get("SHEEN_WEBHOOK_URL", "").strip(),
                secret=env.get("SHEEN_WEBHOOK_SECRET", "").strip(),
                schedule_s=parse_schedule(
                    "SHEEN_WEBHOOK_SCHEDULE", env.get("SHEEN_WEBHOOK_SCHEDULE") or SPEC_SCHEDULE
                ),
                probe_s=_env_float(env, "SHEEN_WEBHOOK_PROBE_S", 15.0),
                lease_s=_env_float(env, "SHEEN_WEBHOOK_LEASE_S", 5.0),
                timeout_s=_env_float(env, "SHEEN_WEBHOOK_TIMEOUT_S", 5.0),
                rate_per_s=_env_int(env, "SHEEN_WEBHOOK_RATE_PER_S", 10),
            ),
            ingress_secret=env.get("SHEEN_INGRESS_SECRET", "").strip(),
            api_token=env.get("SHEEN_API_TOKEN", "").strip(),
            ingress_rate_per_min=_env_int(env, "SHEEN_INGRESS_RATE_PER_MIN", 10),
            ingress_max_body_bytes=_env_int(
                env, "SHEEN_INGRESS_MAX_BODY_BYTES", MAX_REQUEST_BODY_BYTES
            ),
            ingress_body_timeout_s=_env_float(env, "SHEEN_INGRESS_BODY_TIMEOUT_S", 10.0),
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs, events, metadata or errors."""
        candidates = (
            self.anthropic_api_key,
            self.openai_api_key,
            self.webhooks.secret,
            self.ingress_secret,
            self.api_token,
            self.deploy.cloudflare_api_token,
            *(urlsplit(url).password or "" for url in (self.celery_broker, self.celery_backend)),
        )
        return tuple(s for s in candidates if s and s != "guest")  # RabbitMQ's well-known default

    def task_timeout_for(self, task_type: str) -> int:
        """SHEEN_TASK_TIMEOUTS ({"install_deps": 300}) overrides SHEEN_TASK_TIMEOUT_S per type."""
        if not self.task_timeouts.strip():
            return self.task_timeout_s
        try:
            table = json.loads(self.task_timeouts)
            value = table.get(task_type, self.task_timeout_s)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{task_type}: {value!r} is not a whole number of seconds")
        except (ValueError, AttributeError) as error:
            raise ConfigError(f"SHEEN_TASK_TIMEOUTS is not valid: {error}") from None
        return value
