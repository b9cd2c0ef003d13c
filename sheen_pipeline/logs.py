"""Structured JSON logs (structlog) through the `sheen_pipeline` std logger, so Dagster captures
them into run logs. Ids bound with log_context (build, task, run) ride on every line, and
every line is redacted."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

from sheen_pipeline.redaction import redact

ROOT = "sheen_pipeline"
_secrets: set[str] = set()
_configured = False


def _redact_values(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return {
        key: redact(value, _secrets) if isinstance(value, str) else value
        for key, value in event.items()
    }


class _RedactingFilter(logging.Filter):
    """For plain std-logging lines under sheen_pipeline (and their arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), _secrets)
        record.args = ()
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a line is logged, not when logging was set up, so a
    command run in-process (click's CliRunner) logs to its own captured stream."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _stream: Any) -> None:
        """The stream is always the current sys.stderr."""


def configure_logging(secrets: Iterable[str] = ()) -> None:
    """Idempotent; each call adds secrets to those redacted."""
    global _configured
    _secrets.update(s for s in secrets if s)
    if _configured:
        return
    _configured = True
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_values,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger(ROOT)
    root.addFilter(_RedactingFilter())
    level = os.environ.get("SHEEN_LOG_LEVEL", "WARNING").upper()
    handler = _StderrHandler()
    handler.setLevel(level)
    handler.addFilter(_RedactingFilter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


@contextmanager
def log_context(**ids: str) -> Iterator[None]:
    with structlog.contextvars.bound_contextvars(**ids):
        yield
