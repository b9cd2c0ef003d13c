"""Processes on one machine as if on several: Celery workers, clients and servers that each have
a SHEEN_HOME and DAGSTER_HOME of their own and share only Postgres, RabbitMQ and the S3 artifact
store (moto). Used by the worker tests and the load test."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.conftest import REPO_ROOT
from tests.support.databases import postgres_database, postgres_schema
from tests.support.processes import child_env, running
from tests.support.services import rabbitmq_vhost, s3_bucket
from tests.support.waiting import free_port, wait_for

BIN = Path(sys.executable).parent
WORKER_YAML = REPO_ROOT / "deploy" / "celery" / "worker.yaml"
CELERY_DAGSTER_YAML = REPO_ROOT / "deploy" / "celery" / "dagster.yaml"


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    metrics_url: str

    def owns(self, worker: str) -> bool:
        """Whether a task event's worker (host/pid) is a process of this worker."""
        pid = int(worker.rsplit("/", 1)[1])
        try:
            return os.getpgid(pid) == self.process.pid
        except ProcessLookupError:
            return False

    def kill(self) -> None:
        """The machine dies: the worker and its pool processes, at once."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@contextmanager
def shared_services(**extra: str) -> Iterator[dict[str, str]]:
    """What every process of the Celery setup shares: the app database and Dagster's storage
    (Postgres), a broker of its own (a RabbitMQ virtual host) and the artifact store (S3)."""
    with (
        postgres_schema() as app_url,
        postgres_database() as dagster_url,
        rabbitmq_vhost() as broker,
        s3_bucket() as s3_env,
    ):
        yield {
            **s3_env,
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "SHEEN_DATABASE_URL": app_url,
            "SHEEN_DAGSTER_POSTGRES_URL": dagster_url,
            "SHEEN_EXECUTOR": "celery",
            "SHEEN_CELERY_BROKER": broker,
            "SHEEN_CELERY_BACKEND": "rpc://",
            **extra,
        }


def machine_env(root: Path, name: str, shared: dict[str, str], **extra: str) -> dict[str, str]:
    """A process's environment with a SHEEN_HOME and DAGSTER_HOME of its own, empty."""
    home = root / name
    (home / "dagster").mkdir(parents=True)
    return child_env(
        {
            **shared,
            "SHEEN_HOME": str(home / "sheen"),
            "DAGSTER_HOME": str(home / "dagster"),
            "SHEEN_PREVIEW_PORT": str(free_port()),
            **extra,
        }
    )


def client_env(root: Path, shared: dict[str, str]) -> dict[str, str]:
    """The process that launches builds and runs their runs (the Celery executor's side)."""
    env = machine_env(root, "client", shared)
    shutil.copy(CELERY_DAGSTER_YAML, env["DAGSTER_HOME"])
    return env


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def worker_command(name: str, concurrency: int = 1) -> list[str]:
    """The worker command of docs/deployment.md."""
    return [
        str(BIN / "dagster-celery"),
        "worker",
        "start",
        "-A",
        "sheen_pipeline.celery_worker",
        "-y",
        str(WORKER_YAML),
        "-n",
        name,
        "--",
        "--concurrency",
        str(concurrency),
    ]


@contextmanager
def celery_worker(
    root: Path, name: str, shared: dict[str, str], concurrency: int = 1
) -> Iterator[Worker]:
    """`dagster-celery worker start` as docs/deployment.md runs it, ready once its /healthz answers."""
    port = free_port()
    env = machine_env(root, name, shared, SHEEN_WORKER_METRICS_PORT=str(port))
    with running(worker_command(name, concurrency), env, root / f"{name}.log") as process:
        worker = Worker(name, process, f"http://127.0.0.1:{port}")
        wait_for(lambda: answers(f"{worker.metrics_url}/healthz"), 90, f"worker {name} to start")
        yield worker
