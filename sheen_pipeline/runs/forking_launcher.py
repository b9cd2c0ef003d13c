"""A Dagster run launcher that forks each run from a process that has already imported the code
location (`run_forker`), instead of having the code server spawn a new interpreter per run.

Why: Dagster's code server starts every run with multiprocessing `spawn` (hard-coded), so each
run worker imports Dagster and the code location anew; that was most of the CPU of a build
through the daemon. A forked run is the same run (`dagster api execute_run`, its own process,
events, re-execution, termination) started from warm memory.

The forker is started on the first launch and started again when a file of the preloaded
modules' packages changes, so a run never executes code older than what is on disk. It runs on
the launcher's machine, where the code server's runs ran too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Self

from dagster import Array, DagsterRun, Field
from dagster._core.launcher.base import LaunchRunContext, RunLauncher
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClass, ConfigurableClassData, serialize_value

from sheen_pipeline.runs import run_forker

RUN_WORKER = "sheen/run_worker"  # "<host> <pid> <start time>": which process runs it, and where
FORKER_STOP_S = 10.0


def code_fingerprint(modules: Sequence[str]) -> str:
    """A digest of every source file's name, size and modification time in the packages of the
    modules that are not installed ones (the code location in a checkout): it changes whenever
    that code on disk does. Installed packages change by a reinstall, which restarts the
    launcher's process too."""
    installed = {Path(sysconfig.get_path(name)) for name in ("purelib", "platlib")}
    digest = hashlib.sha256()
    for root in sorted({module.partition(".")[0] for module in modules}):
        spec = importlib.util.find_spec(root)
        for folder in sorted(spec.submodule_search_locations or []) if spec else []:
            if any(Path(folder).is_relative_to(place) for place in installed):
                continue
            for path in sorted(Path(folder).rglob("*.py")):
                stat = path.stat()
                digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def process_start(pid: int) -> str | None:
    """When the process started, in clock ticks since boot (None when there is no such process):
    with its pid, it names one process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def worker_label(pid: int) -> str:
    return f"{socket.gethostname()} {pid} {process_start(pid)}"


def running_worker(run: DagsterRun) -> int | None:
    """The pid of the run's worker when it still runs on this machine."""
    host, _, rest = run.tags.get(RUN_WORKER, "").partition(" ")
    pid, _, started = rest.partition(" ")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    return int(pid) if process_start(int(pid)) == started else None


class RunForkerFailed(RuntimeError):
    """The run could not be forked; the launch fails with this reason on the run."""


class RunForker:
    """One `run_forker` process: started with its imports done, asked for one child per run."""

    def __init__(self, modules: Sequence[str]) -> None:
        self.fingerprint = code_fingerprint(modules)
        self._process = subprocess.Popen(
            [sys.executable, "-m", run_forker.__name__, *modules],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self._process.pid
        first = self._answer()
        if first != "ready":
            self.stop()
            reason = first.removeprefix("failed ") or "it exited"
            raise RunForkerFailed(f"the run forker could not import {', '.join(modules)}: {reason}")

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        assert self._process.stdin is not None and self._process.stdout is not None
        return self._process.stdin, self._process.stdout

    def _answer(self) -> str:
        return self._pipes()[1].readline().strip()

    def fork(self, execute_run_args: ExecuteRunArgs) -> int:
        """Starts the run in a new child; its pid."""
        requests, _answers = self._pipes()
        try:
            requests.write(serialize_value(execute_run_args) + "\n")
            requests.flush()
        except OSError:
            pass  # it ended; the missing answer says so
        answer = self._answer()
        if not answer.isdigit():
            raise RunForkerFailed(
                f"the run forker ended (exit code {self._process.poll()}) before starting the run"
            )
        return int(answer)

    def alive(self) -> bool:
        return self._process.poll() is None

    def stop(self) -> None:
        """Ends the forker (its runs go on) and waits for it."""
        requests, answers = self._pipes()
        requests.close()
        try:
            self._process.wait(FORKER_STOP_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        answers.close()


class ForkingRunLauncher(RunLauncher, ConfigurableClass):
    """Launches each run as a fork of a process that imported `preload_modules` once."""

    def __init__(
        self, preload_modules: Sequence[str], inst_data: ConfigurableClassData | None = None
    ) -> None:
        self._inst_data = inst_data
        self._preload_modules = tuple(preload_modules)
        self._forker: RunForker | None = None
        self._lock = threading.Lock()
        super().__init__()  # type: ignore[no-untyped-call]

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "preload_modules": Field(
                Array(str),
                description="Modules imported once and shared by every run (the code location).",
            )
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> Self:
        return cls(config_value["preload_modules"], inst_data=inst_data)

    def _current_forker(self) -> RunForker:
        """The forker of the code on disk now (a new one when the code changed or it ended)."""
        forker = self._forker
        if (
            forker is None
            or not forker.alive()
            or forker.fingerprint != code_fingerprint(self._preload_modules)
        ):
            if forker is not None:
                forker.stop()
            self._forker = None
            forker = self._forker = RunForker(self._preload_modules)
        return forker

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        if run.job_code_origin is None:
            raise RunForkerFailed(f"run {run.run_id} has no code origin to execute")
        args = ExecuteRunArgs(
            job_origin=run.job_code_origin, run_id=run.run_id, instance_ref=self._instance.get_ref()
        )
        with self._lock:
            forker = self._current_forker()
            pid = forker.fork(args)
        self._instance.add_run_tags(run.run_id, {RUN_WORKER: worker_label(pid)})
        self._instance.report_engine_event(
            f"Forked the run's worker (pid {pid}) from the run forker (pid {forker.pid}).",
            dagster_run=run,
            cls=self.__class__,
        )

    def terminate(self, run_id: str) -> bool:
        """Interrupts the run's worker, which ends the run as canceled (as `dagster api
        execute_run` does on SIGTERM)."""
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        self._instance.report_run_canceling(run)
        pid = running_worker(run)
        if pid is None:
            self._instance.report_engine_event(
                "Could not interrupt the run: its worker is not running on this machine.",
                dagster_run=run,
                cls=self.__class__,
            )
            return False
        os.kill(pid, signal.SIGTERM)
        return True

    def dispose(self) -> None:
        with self._lock:
            if self._forker is not None:
                self._forker.stop()
                self._forker = None
