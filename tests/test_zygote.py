"""The tests' forked `sheen` processes (tests/support/zygote.py) behave as started ones do: a
process of their own, with the environment, working folder and output files given, the exit
code click gives, and killed by a signal like any other."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.support.cluster import answers
from tests.support.processes import SHEEN, sheen_cli_env, sheen_forked
from tests.support.waiting import wait_for
from tests.support.zygote import Forked, forked_sheen


def test_a_forked_sheen_has_its_own_environment_output_and_exit_code(tmp_path: Path) -> None:
    env = sheen_cli_env(tmp_path)
    assert sheen_forked(env, "init").returncode == 0
    assert (Path(env["SHEEN_HOME"]) / "sheen.db").is_file()  # the home it was given
    refused = sheen_forked(env, "build", "a site", "--no-such-option")
    assert refused.returncode == 2 and "No such option" in refused.stderr
    assert refused.stdout == ""


def test_a_forked_sheen_is_a_process_of_its_own_that_a_signal_ends(tmp_path: Path) -> None:
    env = sheen_cli_env(tmp_path)
    log = tmp_path / "serve.log"
    serve = forked_sheen([SHEEN, "serve"], env, REPO_ROOT, log)
    try:
        assert serve.pid != os.getpid()
        health = f"http://127.0.0.1:{env['SHEEN_PREVIEW_PORT']}/healthz"
        wait_for(lambda: answers(health), 60, "sheen serve to answer")
        assert Path(f"/proc/{serve.pid}/cwd").resolve() == REPO_ROOT
        assert serve.poll() is None
    finally:
        serve.kill()
    assert serve.wait(30) == -signal.SIGKILL


def test_requests_that_arrive_together_each_start_a_process(tmp_path: Path) -> None:
    env = sheen_cli_env(tmp_path)
    logs = [tmp_path / f"help-{n}.log" for n in range(6)]
    started: list[Forked] = []
    threads = [threading.Thread(target=lambda log=log: started.append(forked(log))) for log in logs]

    def forked(log: Path) -> Forked:
        return forked_sheen([SHEEN, "--help"], env, REPO_ROOT, log)

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [process.wait(60) for process in started] == [0] * len(logs)
    assert len({process.pid for process in started}) == len(logs)
    assert all("Usage: sheen" in log.read_text() for log in logs)
