"""`sheen` processes for tests, forked from a process that imported the CLI and the code location
once, as the run forker forks runs (sheen_pipeline/runs/run_forker.py).

Tests whose subject is several `sheen` processes at once (ten builds sharing one deliverer, four
builds racing for one budget) start them here. Each is a process of its own, with its pid, its
environment, working folder, stdout and stderr, its exit code, killed by signals like any other;
it skips only a new interpreter's start (about 1.3 CPU-s of imports each). One smoke test per
command still runs the installed `sheen` (tests/test_cli.py, `processes.sheen`).

The zygote speaks one line at a time over its stdin and stdout, and ends when its stdin closes:

    {"argv": [...], "env": {...}, "cwd": ..., "stdout": path, "stderr": path}  ->  pid <pid>
                                                     and, when that process ends, exit <pid> <code>

    python -m tests.support.zygote
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from sheen_pipeline.runs.run_forker import preload

WARM = (  # what `sheen build` imports, Anthropic's SDK included (the budget tests speak its wire)
    "sheen_pipeline.cli",
    "sheen_pipeline.defs",
    "sheen_pipeline.runs.local",
    "sheen_pipeline.providers.anthropic_api",
    "networkx",
    "dagster._core.storage.runs.sql_run_storage",
)


# -- the zygote --------------------------------------------------------------------------------


def _become(request: Mapping[str, Any]) -> None:
    """In the forked child: the command, as a process started with these would run it; exits
    the way an interpreter does (atexit handlers, threads joined), never returns."""
    signal.set_wakeup_fd(-1)
    for number, handler in (
        (signal.SIGCHLD, signal.SIG_DFL),
        (signal.SIGINT, signal.default_int_handler),
        (signal.SIGTERM, signal.SIG_DFL),
    ):
        signal.signal(number, handler)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    stdout = _append(request["stdout"])
    os.dup2(stdout, 1)
    os.dup2(stdout if request["stderr"] == request["stdout"] else _append(request["stderr"]), 2)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    from sheen_pipeline.cli import main

    main(args=sys.argv[1:], prog_name="sheen")  # click ends it with SystemExit


def _append(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


def serve() -> None:
    """Forks a command per request line and reports each one's end, until stdin closes."""
    preload(WARM)
    woken_r, woken_w = os.pipe()
    os.set_blocking(woken_w, False)
    signal.set_wakeup_fd(woken_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt for the terminal ends the tests
    requests, unread = sys.stdin.fileno(), b""  # read by hand: select sees no buffered line
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([requests, woken_r], [], [])
        if woken_r in readable:
            os.read(woken_r, 4096)
            _report_ended()
        if requests not in readable:
            continue
        received = os.read(requests, 1 << 20)
        if not received:
            return
        *lines, unread = (unread + received).split(b"\n")
        for line in lines:
            pid = os.fork()
            if pid == 0:
                os.close(woken_r)
                os.close(woken_w)
                _become(json.loads(line))
            print(f"pid {pid}", flush=True)


def _report_ended() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        print(f"exit {pid} {os.waitstatus_to_exitcode(status)}", flush=True)


# -- the tests' side ---------------------------------------------------------------------------


class Forked:
    """A forked `sheen` process, as much of subprocess.Popen as the tests use."""

    def __init__(self, pid: int, ended: Future[int]) -> None:
        self.pid = pid
        self._ended = ended

    @property
    def returncode(self) -> int | None:
        return self._ended.result() if self._ended.done() else None

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        try:
            return self._ended.result(timeout)
        except TimeoutError:
            raise subprocess.TimeoutExpired(f"sheen (pid {self.pid})", timeout or 0) from None

    def kill(self) -> None:
        if self.returncode is None:
            with suppress(ProcessLookupError):  # it ended, and its end is on its way
                os.kill(self.pid, signal.SIGKILL)


class Zygote:
    """This test process's zygote, started on first use and ended with the process."""

    def __init__(self) -> None:
        from tests.support.processes import child_env

        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.zygote"],
            cwd=Path(__file__).resolve().parents[2],
            env=child_env({}),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._requests: IO[bytes] = self._process.stdin
        self._answers: IO[bytes] = self._process.stdout
        if self._answers.readline().strip() != b"ready":
            raise RuntimeError("the zygote did not start (its errors are on stderr)")
        self._lock = threading.Lock()
        self._started: list[Future[Forked]] = []  # answers to requests, in their order
        self._running: dict[int, Future[int]] = {}
        threading.Thread(target=self._read, name="zygote-answers", daemon=True).start()

    def start(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: Path, stdout: Path, stderr: Path
    ) -> Forked:
        request = {"argv": list(argv), "env": dict(env), "cwd": str(cwd)}
        request |= {"stdout": str(stdout), "stderr": str(stderr)}
        started: Future[Forked] = Future()
        with self._lock:
            self._started.append(started)
            self._requests.write(json.dumps(request).encode() + b"\n")
            self._requests.flush()
        return started.result(60)

    def close(self) -> None:
        self._requests.close()
        self._process.wait(30)

    def _read(self) -> None:
        for line in self._answers:
            kind, *values = line.split()
            with self._lock:
                if kind == b"pid":  # always before the same process's exit
                    pid = int(values[0])
                    ended = self._running[pid] = Future()
                    self._started.pop(0).set_result(Forked(pid, ended))
                else:
                    self._running.pop(int(values[0])).set_result(int(values[1]))


_zygote: Zygote | None = None
_zygote_lock = threading.Lock()


def forked_sheen(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, stdout: Path, stderr: Path | None = None
) -> Forked:
    """`sheen argv[1:]` in a process forked from this test process's zygote, its stdout (and
    stderr, unless given a file of its own) appended to stdout."""
    global _zygote
    with _zygote_lock:
        if _zygote is None or _zygote._process.poll() is not None:
            _zygote = Zygote()
            atexit.register(_zygote.close)
        zygote = _zygote
    return zygote.start(argv, env, cwd, stdout, stderr or stdout)


if __name__ == "__main__":
    serve()
