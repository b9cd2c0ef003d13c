"""docs/deployment.md's Celery walk-through, run as written from clean shells: its block of
commands with only the example hosts and names swapped for this machine's (each swap is checked
to still be in the text), every "machine" a copy of the checkout of its own with a home of its
own, sharing nothing on disk. The launcher's build runs its steps on the worker, and the preview
server serves the result from the shared stores."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sheen_pipeline.config import Settings
from sheen_pipeline.events.runtime import stored_events
from sheen_pipeline.events.types import EventType
from tests.conftest import REPO_ROOT
from tests.support.cluster import answers
from tests.support.databases import postgres_base_url
from tests.support.processes import running
from tests.support.services import BROKER_ENV, S3_CREDENTIALS, moto_server
from tests.support.waiting import free_port, wait_for

DOC = REPO_ROOT / "docs" / "deployment.md"
# The block's parts, by the first words of the comment that opens each.
ONCE = "once:"
EVERY_MACHINE = "every machine, in the checkout"
LAUNCHERS = "every machine that launches runs or serves"
UI_AND_DAEMON = "the machine with the UI and the daemon"
BUILD = "or a build from any such machine"
WORKER = "each worker machine"
PREVIEWS = "the preview server"
PARTS = (ONCE, EVERY_MACHINE, LAUNCHERS, UI_AND_DAEMON, BUILD, WORKER, PREVIEWS)
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def celery_commands() -> dict[str, str]:
    """The commands of the Celery section's block by part; a comment after commands opens one."""
    doc = DOC.read_text()
    start = doc.index("```sh\n# once:") + len("```sh\n")
    found: dict[str, list[str]] = {}
    commands: list[str] = []
    after_command = True
    for line in doc[start : doc.index("```", start)].splitlines():
        if line.startswith("#"):
            if after_command:
                opening = line.lstrip("# ")
                key = next((part for part in PARTS if opening.startswith(part)), opening)
                commands = found.setdefault(key, [])
            after_command = False
        elif line.strip():
            commands.append(line)
            after_command = True
    assert sorted(found) == sorted(PARTS), "the walk-through's parts changed: update this test"
    return {part: "\n".join(lines) for part, lines in found.items()}


@dataclass
class Swaps:
    """The doc's example hosts and names, and this machine's in their place."""

    pairs: list[tuple[str, str]]

    def apply(self, commands: str) -> str:
        for example, here in self.pairs:
            commands = commands.replace(example, here)
        return commands

    def check(self, block: str) -> None:
        missing = [example for example, _ in self.pairs if example not in block]
        assert not missing, f"docs/deployment.md no longer says {missing}: update this test"


@pytest.fixture
def swaps() -> Iterator[Swaps]:
    """Unique RabbitMQ user and vhost, Postgres databases and bucket, removed afterwards."""
    if not os.environ.get(BROKER_ENV):
        pytest.skip(f"{BROKER_ENV} is not set")
    postgres = make_url(postgres_base_url())
    unique = f"walk{uuid.uuid4().hex[:8]}"
    host = f"{postgres.host}:{postgres.port or 5432}"
    yield Swaps(
        [
            ("sheen-broker", unique),
            ("sheen@pg.internal:5432", f"{postgres.username}@{host}"),
            ("-h pg.internal -U sheen ", f"-h {postgres.host} -U {postgres.username} "),
            ("sheen_app", f"{unique}_app"),
            ("sheen_dagster", f"{unique}_dagster"),
            ("rabbit.internal", "127.0.0.1"),
            ("s3://sheen-artifacts/", f"s3://{unique}/"),
        ]
    )
    for args in (["delete_user", unique], ["delete_vhost", unique]):
        subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, timeout=60)
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in (f"{unique}_app", f"{unique}_dagster"):
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def machine(tmp_path: Path, name: str) -> Path:
    """A checkout of its own (the source, the shared .venv), its own home and nothing else."""
    checkout = tmp_path / name / "checkout"
    shutil.copytree(
        REPO_ROOT,
        checkout,
        ignore=shutil.ignore_patterns(".git", ".venv", ".sheen", ".dagster", "node_modules"),
    )
    (checkout / ".venv").symlink_to(REPO_ROOT / ".venv")
    (tmp_path / name / "home").mkdir()
    return checkout


def clean_env(checkout: Path, extra: dict[str, str]) -> dict[str, str]:
    """A new login's environment: no SHEEN_*, DAGSTER_*, PYTHONPATH or virtualenv on PATH."""
    home = str(checkout.parent / "home")
    return {"HOME": home, "PATH": CLEAN_PATH, "LANG": "C.UTF-8", **extra}


def shell(script: str, checkout: Path, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=checkout,
        env=clean_env(checkout, extra),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_celery_walk_through_works_as_written(tmp_path: Path, swaps: Swaps) -> None:
    preview_port, metrics_port = free_port(), free_port()
    public = f"http://127.0.0.1:{preview_port}/"
    swaps.pairs.append(("https://previews.example.com/", public))
    commands = celery_commands()
    swaps.check("\n".join(commands.values()))
    part = {name: swaps.apply(lines) for name, lines in commands.items()}
    assert part[UI_AND_DAEMON] == "make dev"  # the UI and daemon path: tests/test_daemon_e2e.py
    launcher, worker, previews = (machine(tmp_path, n) for n in ("launcher", "worker", "serve"))

    # the broker's and database's administrator, in their own shell (rabbitmqctl needs its cookie)
    once = shell(part[ONCE], launcher, {"HOME": os.environ["HOME"]})
    assert once.returncode == 0, once.stderr
    with moto_server() as s3_endpoint:
        aws = {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}
        launch = f"{part[EVERY_MACHINE]}\n{part[LAUNCHERS]}"
        setup = shell(launch, launcher, aws)
        assert setup.returncode == 0, setup.stderr
        assert re.search(r"artifact store: s3://walk\w+ \(created\)", setup.stdout), setup.stdout

        # `sheen init` is run once (above), as the walk-through says
        launch = "\n".join(x for x in launch.splitlines() if not x.startswith("sheen init"))
        with (
            running(
                ["bash", "-euo", "pipefail", "-c", f"{part[EVERY_MACHINE]}\n{part[WORKER]}"],
                clean_env(worker, {**aws, "SHEEN_WORKER_METRICS_PORT": str(metrics_port)}),
                tmp_path / "worker.log",
                cwd=worker,
            ) as worker_process,
            running(
                ["bash", "-euo", "pipefail", "-c", f"{launch}\n{part[PREVIEWS]}"],
                clean_env(previews, {**aws, "SHEEN_PREVIEW_PORT": str(preview_port)}),
                tmp_path / "serve.log",
                cwd=previews,
            ),
        ):
            wait_for(lambda: answers(f"http://127.0.0.1:{metrics_port}/healthz"), 120, "worker")
            wait_for(lambda: answers(f"{public}healthz"), 120, "the preview server")
            build = shell(f"{launch}\n{part[BUILD]}", launcher, aws)
            assert build.returncode == 0, build.stdout + build.stderr
            preview = re.search(rf"preview: ({re.escape(public)}p/([^/\s]+)/)", build.stdout)
            assert preview, build.stdout
            page = requests.get(preview.group(1), timeout=30)
            assert page.status_code == 200 and "<html" in page.text.lower(), page.text[:500]

            shared = {**aws, **exported(part[EVERY_MACHINE])}
            events = stored_events(Settings.from_env(shared)).after(preview.group(2), 0, 1000)
            workers = {e.data["worker"] for e in events if e.type is EventType.TASK_STARTED}
            assert workers and all(in_group(w, worker_process.pid) for w in workers), workers
    assert not (launcher / ".sheen" / "workspaces").exists()  # no step ran on the launcher


def exported(commands: str) -> dict[str, str]:
    """The SHEEN_* values a part exports, as the shell would read them."""
    return {
        name: value.strip("'\"")
        for name, value in re.findall(r"^export (SHEEN_\w+)=(\S+)", commands, re.MULTILINE)
    }


def in_group(worker: str, group: int) -> bool:
    """Whether a task event's worker (host/pid) is a process of that process group."""
    try:
        return os.getpgid(int(worker.rsplit("/", 1)[1])) == group
    except ProcessLookupError:
        return False
