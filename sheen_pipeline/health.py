"""Whether this process can do its work: the app database, the artifact store and (with the
Celery executor) the broker are reachable. Failures name the piece and the error's kind, never
a URL or a credential."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text

from sheen_pipeline.config import Settings
from sheen_pipeline.redaction import redact
from sheen_pipeline.store.blobs import open_blobs
from sheen_pipeline.store.engines import engine_for

PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Probe:
    name: str
    ok: bool
    detail: str = "reachable"


def _database(settings: Settings) -> None:
    with engine_for(settings.database_url).connect() as conn:
        conn.execute(text("SELECT 1"))


def _artifact_store(settings: Settings) -> None:
    open_blobs(settings.artifact_store, engine_for(settings.database_url)).check_reachable()


def _broker(settings: Settings) -> None:
    from kombu.connection import Connection  # the Celery executor's; imported only when used

    broker = Connection(settings.celery_broker, connect_timeout=PROBE_TIMEOUT_S)  # type: ignore[no-untyped-call]
    with broker as connection:
        connection.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_S)


def probe_health(settings: Settings) -> list[Probe]:
    checks: dict[str, Callable[[Settings], None]] = {
        "database": _database,
        "artifact_store": _artifact_store,
    }
    if settings.executor == "celery":
        checks["broker"] = _broker
    probes = []
    for name, check in checks.items():
        try:
            check(settings)
        except Exception as error:
            detail = redact(f"{type(error).__name__}: {error}", settings.secrets)
            probes.append(Probe(name, ok=False, detail=_without_urls(detail)))
        else:
            probes.append(Probe(name, ok=True))
    return probes


def _without_urls(message: str) -> str:
    """Drivers like to quote the URL they could not reach, credentials and all."""
    return " ".join("<url>" if "://" in word else word for word in message.split(" "))
