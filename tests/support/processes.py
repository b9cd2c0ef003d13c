"""Child processes for end-to-end tests: each in its own process group, always stopped."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from dagster import DagsterInstance
from dagster._core.test_utils import environ

from sheen_pipeline.cli.app import STANDALONE_INSTANCE_CONFIG
from tests.conftest import REPO_ROOT
from tests.support.waiting import free_port


def child_env(overrides: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHEEN_", "DAGSTER_"))}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(overrides)
    return env


@contextmanager
def running(
    args: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path = REPO_ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    """Start args in a new process group; on exit SIGINT the group, then SIGKILL after 20 s."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(args),
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            _stop_group(process)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGINT, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            os.killpg(process.pid, signal.SIGKILL)  # stragglers left in the group
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


SHEEN = str(Path(sys.executable).parent / "sheen")


def sheen_cli_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Environment for a `sheen` subprocess with its own Dagster instance and SHEEN_HOME."""
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir(exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(STANDALONE_INSTANCE_CONFIG)
    return child_env(
        {
            "DAGSTER_HOME": str(dagster_home),
            "SHEEN_HOME": str(tmp_path / "sheen"),
            "SHEEN_PREVIEW_PORT": str(free_port()),
            "SHEEN_PREVIEW_CHECKS": "off",  # on in tests/test_preview_checks.py
            **overrides,
        }
    )


@contextmanager
def instance_of(env: Mapping[str, str]) -> Iterator[DagsterInstance]:
    """The Dagster instance of a `sheen` subprocess with env, opened here as the CLI opens it
    (its dagster.yaml names DAGSTER_HOME)."""
    with environ({"DAGSTER_HOME": env["DAGSTER_HOME"]}), DagsterInstance.get() as instance:
        yield instance


def sheen(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SHEEN, *args], cwd=REPO_ROOT, env=dict(env), capture_output=True, text=True, timeout=300
    )


def sheen_forked(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The same `sheen` command line in a process forked from one that imported the CLI once
    (tests/support/zygote.py): for tests whose subject is several processes at once, not a
    process's start (about 0.7 CPU-s less each)."""
    from tests.support.zygote import forked_sheen

    with tempfile.TemporaryDirectory(prefix="sheen-forked-") as folder:
        stdout, stderr = Path(folder) / "stdout", Path(folder) / "stderr"
        code = forked_sheen([SHEEN, *args], env, REPO_ROOT, stdout, stderr).wait(300)
        return subprocess.CompletedProcess(
            [SHEEN, *args], code, stdout.read_text(), stderr.read_text()
        )


def sheen_here(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The same `sheen` command line run in this process by click's CliRunner, in env: none of
    a new interpreter's start-up (~2 CPU-s), for tests whose subject is what the command does,
    not its process (sheen() keeps one smoke test per command)."""
    from click.testing import CliRunner

    from sheen_pipeline.cli import main

    cleared: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    given = {k: v for k, v in env.items() if os.environ.get(k) != v}
    result = CliRunner().invoke(main, list(args), env={**cleared, **given})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def processes_with(marker: str) -> list[int]:
    """Pids of this machine's processes whose command line contains marker (whatever process
    namespace started them)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_text():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def in_forked_child(work: Callable[[], str], deadline_s: float = 120) -> str:
    """What work() returns in a child forked from this process (a line saying why when it raised,
    or did not answer within deadline_s: then the child is killed, never left hanging)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            try:
                answer = work()
            except BaseException as error:
                answer = f"the child raised {type(error).__name__}: {error}"
            os.write(write, answer.encode())
        finally:
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], deadline_s)
    if not ready:
        os.kill(pid, signal.SIGKILL)
    answer = (
        os.read(read, 4096).decode() if ready else f"the child did not answer in {deadline_s} s"
    )
    os.close(read)
    os.waitpid(pid, 0)
    return answer
