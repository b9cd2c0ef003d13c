"""Every setting, read from the environment in one place with pydantic-settings, so every process
agrees on them. Each field names its variable (its alias) and has its one default; an empty
variable means the default. A bad value stops the process with a ConfigError naming the
variable, before anything starts: price, budget and timeout tables included. One module past
350 lines on purpose: every setting is defined here and nowhere else."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sheen_pipeline.config.budget_limits import Budgets, load_budgets
from sheen_pipeline.config.errors import ConfigError
from sheen_pipeline.config.prices import DEFAULT_PRICES, Price, load_prices, price_file
from sheen_pipeline.models import MAX_REQUEST_BODY_BYTES

DEFAULT_NPM_REGISTRY = "https://registry.npmjs.org/"
SPEC_SCHEDULE = "0,5s,5m,30m,2h,5h,10h,10h"  # Standard Webhooks' recommended retry schedule
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_schedule(raw: str) -> tuple[float, ...]:
    """ "0,5s,5m,2h" -> (0, 5, 300, 7200): each attempt's delay after the one before failed."""
    delays = []
    for part in raw.split(","):
        text = part.strip().lower()
        unit = _UNITS.get(text[-1:]) if text else None
        number = text[:-1] if unit else text
        try:
            delay = float(number) * (unit or 1.0)
        except ValueError:
            raise ValueError(f"must be delays like {SPEC_SCHEDULE!r} (s, m or h)") from None
        if delay < 0:
            raise ValueError("cannot hold a negative delay")
        delays.append(delay)
    if delays[0] != 0:
        raise ValueError("must start with 0 (the first attempt is immediate)")
    return tuple(delays)


def _optional_http_url(raw: str) -> str:
    return raw and _http_url(raw)


def _http_url(raw: str) -> str:
    """An http(s) URL without credentials, ending in '/'."""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise ValueError("must be an http(s) URL")
    return raw if raw.endswith("/") else f"{raw}/"


def _artifact_store(raw: str) -> str:
    bucket = raw.removeprefix("s3://").partition("/")[0]
    if raw != "database" and not (raw.startswith("s3://") and bucket):
        raise ValueError("must be 'database' or s3://bucket[/prefix]")
    return raw


def _task_timeouts(raw: object) -> object:
    """{"install_deps": 300}: seconds per task type, each a whole number of at least 1."""
    if not isinstance(raw, str):
        return raw
    try:
        table = json.loads(raw)
    except ValueError as error:
        raise ValueError(f"is not JSON: {error}") from None
    if not isinstance(table, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in table.values()
    ):
        raise ValueError("must map task types to whole numbers of seconds (at least 1)")
    return table


def _parsed_by(parse: Any) -> BeforeValidator:
    """A field given as text in the environment, parsed into its value (defaults pass as is)."""
    return BeforeValidator(lambda raw: parse(raw) if isinstance(raw, str) else raw)


def _lowercase(raw: object) -> object:
    return raw.lower() if isinstance(raw, str) else raw


def env(name: str, default: Any = ..., **constraints: Any) -> Any:
    """A field read from the variable `name`."""
    return Field(default, validation_alias=name, **constraints)


def secret(name: str) -> Any:
    """A field read from `name` that never shows in a repr or a validation error."""
    return Field("", validation_alias=name, repr=False)


class Section(BaseModel):
    """A group of settings; constructible by field name (tests, benchmarks) or from variables."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, hide_input_in_errors=True)


class FileLimits(Section):
    """What one build's generated files may add up to (counted on what is written), and what
    one build may deploy (counted on what is copied, build output included)."""

    max_file_bytes: int = env("SHEEN_MAX_FILE_BYTES", 1_000_000, ge=1)
    max_files: int = env("SHEEN_MAX_FILES", 200, ge=1)
    max_total_bytes: int = env("SHEEN_MAX_TOTAL_BYTES", 20_000_000, ge=1)
    max_deploy_files: int = env("SHEEN_MAX_DEPLOY_FILES", 1000, ge=1)
    max_deploy_bytes: int = env("SHEEN_MAX_DEPLOY_BYTES", 50_000_000, ge=1)


class ModelCalls(Section):
    """How calls to a model are made; `model` empty means the provider's default."""

    model: str = env("SHEEN_MODEL", "")
    max_tokens: int = env("SHEEN_MAX_TOKENS", 16000, ge=1)
    timeout_s: int = env("SHEEN_LLM_TIMEOUT_S", 120, ge=1)
    max_retries: int = env("SHEEN_LLM_MAX_RETRIES", 3, ge=0)


class SandboxSettings(Section):
    """How generated build commands are confined (see build/sandbox.py). Turning it off is for
    trusted local use only: generated code then runs as this process's user."""

    enabled: bool = env("SHEEN_SANDBOX", True)
    memory_mb: int = env("SHEEN_SANDBOX_MEMORY_MB", 2048, ge=1)
    max_processes: int = env("SHEEN_SANDBOX_MAX_PROCESSES", 256, ge=1)
    max_file_mb: int = env("SHEEN_SANDBOX_MAX_FILE_MB", 256, ge=1)


class DeploySettings(Section):
    """Where previews go: `local` (sheen serve) or `cloudflare` (Workers static assets)."""

    target: Annotated[Literal["local", "cloudflare"], BeforeValidator(_lowercase)] = env(
        "SHEEN_DEPLOY_TARGET", "local"
    )
    cloudflare_api_token: str = secret("CLOUDFLARE_API_TOKEN")
    cloudflare_account_id: str = env("CLOUDFLARE_ACCOUNT_ID", "")
    # another endpoint speaking Cloudflare's API (tests)
    cloudflare_base_url: str = env("SHEEN_CLOUDFLARE_BASE_URL", "")
    source_maps: bool = env("SHEEN_DEPLOY_SOURCE_MAPS", False)  # else kept for the checks only


class WebhookSettings(Section):
    """Where build events are pushed and how hard delivery tries. Each event goes on its own, at
    most max_in_flight at once per endpoint. While the receiver answered 2xx within the last
    HEALTHY_WINDOW_S, a failed event is tried again quick_retries times, quick_retry_s apart;
    then attempt n happens schedule_s[n] seconds after attempt n-1 failed; while the receiver
    fails, the oldest waiting event is retried every probe_s, and its first success sends
    everything waiting at once."""

    url: str = env("SHEEN_WEBHOOK_URL", "")
    secret: str = secret("SHEEN_WEBHOOK_SECRET")
    schedule_s: Annotated[tuple[float, ...], _parsed_by(parse_schedule)] = env(
        "SHEEN_WEBHOOK_SCHEDULE", parse_schedule(SPEC_SCHEDULE)
    )
    probe_s: float = env("SHEEN_WEBHOOK_PROBE_S", 15.0, ge=0.001)
    lease_s: float = env("SHEEN_WEBHOOK_LEASE_S", 5.0, ge=0.001)
    timeout_s: float = env("SHEEN_WEBHOOK_TIMEOUT_S", 5.0, ge=0.001)
    rate_per_s: int = env("SHEEN_WEBHOOK_RATE_PER_S", 10, ge=1)
    max_in_flight: int = env("SHEEN_WEBHOOK_MAX_IN_FLIGHT", 4, ge=1)
    quick_retries: int = env("SHEEN_WEBHOOK_QUICK_RETRIES", 3, ge=0)
    quick_retry_s: float = env("SHEEN_WEBHOOK_QUICK_RETRY_S", 1.0, ge=0.001)

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.secret)


class Settings(BaseSettings):
    """Everything the pipeline reads from the environment."""

    model_config = SettingsConfigDict(
        frozen=True, populate_by_name=True, hide_input_in_errors=True, extra="ignore"
    )

    home: Path = env("SHEEN_HOME", Path(".sheen"))
    database_url: str = env("SHEEN_DATABASE_URL", "")  # empty: SQLite in home
    provider: Literal["", "anthropic", "openai", "offline"] = env("SHEEN_PROVIDER", "")
    # Tests only: a provider factory ('tests.support.providers:Name') for processes a test cannot
    # hand a provider object to (the CLI's, the daemon's run workers); it wins over SHEEN_PROVIDER.
    test_provider: str = env("SHEEN_TEST_PROVIDER", "")
    preview_host: str = env("SHEEN_PREVIEW_HOST", "127.0.0.1")
    preview_port: int = env("SHEEN_PREVIEW_PORT", 8787, ge=1)
    # Where people reach `sheen serve` (a proxy's https://previews.example.com/): the base of
    # preview, screenshot and production URLs; empty, http://SHEEN_PREVIEW_HOST:PORT/.
    public_url: Annotated[str, _parsed_by(_optional_http_url)] = env("SHEEN_PUBLIC_URL", "")
    file_limits: FileLimits = FileLimits()
    max_tasks: int = env("SHEEN_MAX_TASKS", 40, ge=1)
    sandbox: SandboxSettings = SandboxSettings()
    deploy: DeploySettings = DeploySettings()
    preview_checks: bool = env("SHEEN_PREVIEW_CHECKS", True)
    check_settle_ms: int = env("SHEEN_CHECK_SETTLE_MS", 1500, ge=0)
    npm_cache: str = env("SHEEN_NPM_CACHE", "")
    npm_registry: Annotated[str, _parsed_by(_http_url)] = env(
        "SHEEN_NPM_REGISTRY", DEFAULT_NPM_REGISTRY
    )
    repair_rounds: int = env("SHEEN_REPAIR_ROUNDS", 1, ge=0)
    max_cycle_edges_to_drop: int = env("SHEEN_MAX_CYCLE_EDGES_TO_DROP", 3, ge=0)
    sequential_fallback: bool = env("SHEEN_SEQUENTIAL_FALLBACK", True)
    require_plan_approval: bool = env("SHEEN_REQUIRE_PLAN_APPROVAL", False)
    model_calls: ModelCalls = ModelCalls()
    openai_base_url: str = env("SHEEN_OPENAI_BASE_URL", "")
    prices: Annotated[Mapping[str, Price], _parsed_by(load_prices)] = env(
        "SHEEN_PRICES", DEFAULT_PRICES
    )
    budgets: Annotated[Budgets, _parsed_by(load_budgets)] = env("SHEEN_BUDGETS", Budgets())
    cost_anomaly_factor: float = env("SHEEN_COST_ANOMALY_FACTOR", 3.0, ge=0.001)
    task_timeout_s: int = env("SHEEN_TASK_TIMEOUT_S", 60, ge=1)
    task_timeouts: Annotated[Mapping[str, int], BeforeValidator(_task_timeouts)] = env(
        "SHEEN_TASK_TIMEOUTS", {}
    )
    build_timeout_s: int = env("SHEEN_BUILD_TIMEOUT_S", 900, ge=1)
    build_heartbeat_timeout_s: float = env("SHEEN_BUILD_HEARTBEAT_TIMEOUT_S", 60.0, ge=0.001)
    task_retries: int = env("SHEEN_TASK_RETRIES", 3, ge=0)
    task_retry_delay_s: float = env("SHEEN_TASK_RETRY_DELAY_S", 2.0, ge=0.001)
    result_cache_ttl_s: int = env("SHEEN_RESULT_CACHE_TTL_S", 3600, ge=0)
    build_command_timeout_s: int = env("SHEEN_BUILD_COMMAND_TIMEOUT_S", 300, ge=1)
    plan_approval_ttl_s: int = env("SHEEN_PLAN_APPROVAL_TTL_S", 300, ge=1)
    pool_plan_limit: int = env("SHEEN_POOL_PLAN_LIMIT", 2, ge=1)
    pool_llm_limit: int = env("SHEEN_POOL_LLM_LIMIT", 5, ge=1)
    max_parallel_tasks: int = env("SHEEN_MAX_PARALLEL_TASKS", 5, ge=1)
    artifact_store: Annotated[str, _parsed_by(_artifact_store)] = env(
        "SHEEN_ARTIFACT_STORE", "database"
    )
    executor: Annotated[Literal["async", "celery"], BeforeValidator(_lowercase)] = env(
        "SHEEN_EXECUTOR", "async"
    )
    celery_broker: str = env("SHEEN_CELERY_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
    celery_backend: str = env("SHEEN_CELERY_BACKEND", "rpc://")
    metrics_host: str = env("SHEEN_WORKER_METRICS_HOST", "127.0.0.1")
    metrics_port: int = env("SHEEN_WORKER_METRICS_PORT", 9108, ge=0)
    dagster_webserver_url: str = env("SHEEN_DAGSTER_WEBSERVER_URL", "")
    ui_reload_interval_s: float = env("SHEEN_UI_RELOAD_INTERVAL_S", 30.0, ge=0.001)
    ui_job_window: int = env("SHEEN_UI_JOB_WINDOW", 200, ge=1)
    webhooks: WebhookSettings = WebhookSettings()
    ingress_rate_per_min: int = env("SHEEN_INGRESS_RATE_PER_MIN", 10, ge=1)
    ingress_max_body_bytes: int = env("SHEEN_INGRESS_MAX_BODY_BYTES", MAX_REQUEST_BODY_BYTES, ge=1)
    ingress_body_timeout_s: float = env("SHEEN_INGRESS_BODY_TIMEOUT_S", 10.0, ge=0.001)
    anthropic_api_key: str = secret("ANTHROPIC_API_KEY")
    openai_api_key: str = secret("SHEEN_OPENAI_API_KEY")
    ingress_secret: str = secret("SHEEN_INGRESS_SECRET")
    api_token: str = secret("SHEEN_API_TOKEN")

    def __hash__(self) -> int:
        """Equal values, equal hash (a process keeps one event log per settings); the tables
        are dicts, so the frozen model's field-by-field hash would fail."""
        return hash(self.model_dump_json())

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, home: Path) -> Path:
        return home.expanduser().resolve()

    @field_validator("database_url")
    @classmethod
    def _sqlite_in_home(cls, url: str, info: ValidationInfo) -> str:
        return url or f"sqlite:///{info.data['home'] / 'sheen.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments first, then the process environment (flat names, nested groups too)."""
        return init_settings, FlatEnvironment(settings_cls, os.environ)

    @model_validator(mode="after")
    def _provider_has_what_it_needs(self) -> Settings:
        """The chosen provider's key or server is checked at load, like every other setting."""
        if self.provider == "anthropic" and not self.anthropic_api_key:
            raise ValueError("SHEEN_PROVIDER=anthropic needs ANTHROPIC_API_KEY")
        if self.provider == "openai" and not (self.openai_base_url and self.model_calls.model):
            raise ValueError(
                "SHEEN_PROVIDER=openai needs SHEEN_OPENAI_BASE_URL (for example "
                "http://127.0.0.1:11434/v1) and SHEEN_MODEL"
            )
        return self

    @model_validator(mode="after")
    def _shared_when_distributed(self) -> Settings:
        """Celery steps run on other machines: what they read and write must be shared."""
        if self.executor == "celery" and self.database_url.startswith("sqlite"):
            raise ValueError(
                "SHEEN_EXECUTOR=celery runs steps on other machines, so SHEEN_DATABASE_URL must "
                "be a database they share (Postgres), not SQLite on this disk"
            )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """From `environ` (the process environment by default); a bad value is a ConfigError.
        Runs read settings for every step's resources: the same variables, in the same folder
        (a relative SHEEN_HOME) and with the same price file, give the settings validated
        before (validating them anew costs more than the rest of a resource's set-up)."""
        values = variables_of(cls, os.environ if environ is None else environ)
        prices = price_file(values.get("SHEEN_PRICES", ""))
        return cls._validated(json.dumps(values, sort_keys=True), os.getcwd(), _stamp(prices))

    @classmethod
    @lru_cache(maxsize=64)
    def _validated(cls, values: str, _cwd: str, _price_file: tuple[int, int] | None) -> Settings:
        try:
            return cls.model_validate(json.loads(values))
        except ValidationError as error:
            raise ConfigError(_describe(error)) from None

    @property
    def workspaces_dir(self) -> Path:
        return self.home / "workspaces"

    @property
    def dist_dir(self) -> Path:
        return self.home / "dist"

    @property
    def public_base(self) -> str:
        """The base of the URLs people open: SHEEN_PUBLIC_URL, else where `sheen serve` binds."""
        return self.public_url or f"http://{self.preview_host}:{self.preview_port}/"

    def preview_url(self, build_id: str) -> str:
        return f"{self.public_base}p/{build_id}/"

    @property
    def npm_cache_dir(self) -> Path:
        """Tarballs the pipeline fetched from the registry for any build (SHEEN_NPM_CACHE, else
        SHEEN_HOME/npm-cache); written by the pipeline only, never by a sandbox."""
        return Path(self.npm_cache) if self.npm_cache else self.home / "npm-cache"

    @property
    def screenshots_dir(self) -> Path:
        return self.home / "screenshots"

    def screenshot_url(self, build_id: str, name: str, round_number: int | None = None) -> str:
        """A check round's screenshot; without a round, the latest round's."""
        folder = "" if round_number is None else f"{round_number}/"
        return f"{self.public_base}s/{build_id}/{folder}{name}.png"

    def production_url(self, project_id: str) -> str:
        """Where `sheen serve` serves a project's promoted build (the local target)."""
        return f"{self.public_base}prod/{project_id}/"

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
        return self.task_timeouts.get(task_type, self.task_timeout_s)


def _stamp(path: str | None) -> tuple[int, int] | None:
    """When and how large a file was last written (None for no file, or none there)."""
    if path is None:
        return None
    try:
        written = os.stat(path)
    except OSError:
        return None
    return written.st_mtime_ns, written.st_size


def variables_of(model: type[BaseModel], environ: Mapping[str, str]) -> dict[str, Any]:
    """The set, non-empty variables `model`'s fields (and its groups' fields) are read from."""
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, Section):
            values[name] = variables_of(group, environ)
        elif isinstance(field.validation_alias, str):
            raw = environ.get(field.validation_alias, "").strip()
            if raw:
                values[field.validation_alias] = raw
    return values


class FlatEnvironment(PydanticBaseSettingsSource):
    """pydantic-settings' source for this project's variables: one flat name per field, groups
    included (SHEEN_MAX_FILES fills file_limits.max_files), empty meaning the default."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.environ.get(str(field.validation_alias)), field_name, False

    def __call__(self) -> dict[str, Any]:
        return variables_of(self.settings_cls, self.environ)


_MEANINGS = {
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false",
}
_SECRET_VARIABLES = {
    str(field.validation_alias)
    for group in (Settings, DeploySettings, WebhookSettings)
    for field in group.model_fields.values()
    if not field.repr
}


def _describe(error: ValidationError) -> str:
    """'SHEEN_PREVIEW_PORT must be a whole number, got 'eighty'': the variable, what it must
    be, and the value (never a secret's), one line per bad variable."""
    lines = []
    for problem in error.errors(include_url=False):
        name = str(problem["loc"][-1]) if problem["loc"] else ""
        ctx = problem.get("ctx") or {}
        got = "" if name in _SECRET_VARIABLES else f", got {problem.get('input')!r}"
        if problem["type"] == "value_error":
            lines.append(f"{name} {ctx.get('error')}".strip())
        elif problem["type"] == "greater_than_equal":
            lines.append(f"{name} must be at least {ctx.get('ge')}{got}")
        elif problem["type"] == "literal_error":
            lines.append(f"{name} must be one of {ctx.get('expected')}{got}")
        else:
            lines.append(f"{name} {_MEANINGS.get(problem['type'], problem['msg'])}{got}")
    return "; ".join(lines)
