"""The run launcher of dagster.yaml: each run is a fork of one process that imported the code
location once, restarted when the code on disk changes; a failed import fails the launch with
its reason; terminating a run interrupts its worker and the run ends canceled."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    instance_for_test,
    reconstructable,
)

from sheen_pipeline.runs.forking_launcher import RUN_WORKER, RunForkerFailed, running_worker
from sheen_pipeline.runs.origins import job_named, local_origins
from tests.conftest import PROJECT_INSTANCE
from tests.support.waiting import wait_for

PROBE = "sheen_forker_probe"
PROBE_JOBS = """
import os
import time
from pathlib import Path

from dagster import in_process_executor, job, op


@op
def wait_for_release() -> None:
    folder = Path(os.environ["PROBE_DIR"])
    (folder / "started").write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not (folder / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@job(executor_def=in_process_executor)
def waits() -> None:
    wait_for_release()
"""
STARTS_A_THREAD = (
    "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
)

LAUNCHER = PROJECT_INSTANCE["run_launcher"]
Launching = Callable[[Sequence[str]], DagsterInstance]


@pytest.fixture
def launching(
    tmp_path: Path, dagster_template: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Launching]:
    """Instances whose run launcher is dagster.yaml's, preloading the given modules (a probe
    package in tmp_path, importable here and by the forker, is one; this process keeps the
    version it imported first, the forker reads what is on disk when it starts)."""
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "code"))
    monkeypatch.setenv("PROBE_DIR", str(tmp_path))
    monkeypatch.setenv("SHEEN_HOME", str(tmp_path / "sheen"))
    write_probe(tmp_path, PROBE_JOBS)
    monkeypatch.delitem(sys.modules, PROBE, raising=False)  # an earlier test's copy
    importlib.import_module(PROBE)
    with ExitStack() as stack:

        def instance(modules: Sequence[str]) -> DagsterInstance:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=tmp_path)))
            shutil.copytree(dagster_template, home, dirs_exist_ok=True)
            config = {**LAUNCHER, "config": {"preload_modules": list(modules)}}
            overrides = {"run_launcher": config}
            return stack.enter_context(instance_for_test(overrides, temp_dir=str(home)))

        yield instance


def write_probe(tmp_path: Path, source: str) -> None:
    package = tmp_path / "code" / PROBE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(source)


def launch_probe(instance: DagsterInstance) -> DagsterRun:
    job = reconstructable(importlib.import_module(PROBE).waits)
    run = instance.create_run_for_job(job.get_definition(), job_code_origin=job.get_python_origin())
    instance.launch_run(run.run_id, workspace=None)  # type: ignore[arg-type]
    return run


def running_probe(launching: Launching, tmp_path: Path) -> tuple[DagsterInstance, DagsterRun]:
    """A probe run whose step has started and waits to be released."""
    instance = launching([PROBE])
    run = launch_probe(instance)
    wait_for(lambda: (tmp_path / "started").exists(), 60, "the run's step to start")
    return instance, run


def ended(instance: DagsterInstance, run: DagsterRun) -> DagsterRun:
    def finished() -> DagsterRun | None:
        latest = instance.get_run_by_id(run.run_id)
        return latest if latest is not None and latest.is_finished else None

    return wait_for(finished, 120, f"run {run.run_id} to end")


def forked(instance: DagsterInstance, run: DagsterRun) -> tuple[int, int]:
    """(the worker's pid, the forker's pid), from the launcher's engine event."""
    messages = [
        event.message or ""
        for event in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT)
    ]
    found = [
        re.search(r"worker \(pid (\d+)\) from the run forker \(pid (\d+)\)", m) for m in messages
    ]
    worker, forker = next(match.groups() for match in found if match)
    return int(worker), int(forker)


def test_the_code_locations_runs_are_forked_from_one_process(launching: Launching) -> None:
    instance = launching(LAUNCHER["config"]["preload_modules"])
    job = job_named("evict_result_cache")
    remote, code = local_origins(job.name)
    pids = []
    for _ in range(2):
        run = instance.create_run_for_job(job, remote_job_origin=remote, job_code_origin=code)
        instance.launch_run(run.run_id, workspace=None)  # type: ignore[arg-type]
        assert ended(instance, run).status is DagsterRunStatus.SUCCESS
        started = instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT)
        worker, forker = forked(instance, run)
        assert any(f"Started process for run (pid: {worker})" in (e.message or "") for e in started)
        pids.append((worker, forker))
    (first_worker, first_forker), (second_worker, second_forker) = pids
    assert first_forker == second_forker != os.getpid()
    assert len({first_worker, second_worker, first_forker}) == 3


def test_a_change_to_the_code_on_disk_starts_a_new_forker(
    launching: Launching, tmp_path: Path
) -> None:
    instance = launching([PROBE])
    (tmp_path / "release").touch()
    first = launch_probe(instance)
    assert ended(instance, first).status is DagsterRunStatus.SUCCESS
    again = launch_probe(instance)
    assert ended(instance, again).status is DagsterRunStatus.SUCCESS
    write_probe(tmp_path, PROBE_JOBS + "\n# changed\n")
    changed = launch_probe(instance)
    assert ended(instance, changed).status is DagsterRunStatus.SUCCESS
    forkers = [forked(instance, run)[1] for run in (first, again, changed)]
    assert forkers[0] == forkers[1] != forkers[2]


@pytest.mark.parametrize(
    ("module", "reason"),
    [
        ("sheen_no_such_module", "ModuleNotFoundError: No module named 'sheen_no_such_module'"),
        (PROBE, "ForkUnsafeImport: importing sheen_forker_probe started threads"),
    ],
)
def test_a_forker_that_cannot_start_fails_the_launch_with_its_reason(
    launching: Launching, tmp_path: Path, module: str, reason: str
) -> None:
    write_probe(tmp_path, PROBE_JOBS + STARTS_A_THREAD)
    instance = launching([module])
    with pytest.raises(RunForkerFailed, match=re.escape(f"could not import {module}: {reason}")):
        launch_probe(instance)


def test_terminating_a_run_interrupts_its_worker_and_the_run_ends_canceled(
    launching: Launching, tmp_path: Path
) -> None:
    instance, run = running_probe(launching, tmp_path)
    latest = instance.get_run_by_id(run.run_id)
    assert latest is not None and running_worker(latest) == forked(instance, run)[0]
    assert instance.run_launcher.terminate(run.run_id)
    assert ended(instance, run).status is DagsterRunStatus.CANCELED
    assert not instance.run_launcher.terminate(run.run_id)  # nothing left to end


def test_a_run_whose_worker_is_gone_is_not_reported_as_interrupted(
    launching: Launching, tmp_path: Path
) -> None:
    instance, run = running_probe(launching, tmp_path)
    worker = forked(instance, run)[0]
    os.kill(worker, signal.SIGKILL)
    latest = wait_for(
        lambda: (r := instance.get_run_by_id(run.run_id)) and running_worker(r) is None and r,
        30,
        "the worker to be gone",
    )
    assert RUN_WORKER in latest.tags
    assert not instance.run_launcher.terminate(run.run_id)
    messages = [e.message or "" for e in instance.all_logs(run.run_id)]
    assert any("its worker is not running on this machine" in m for m in messages)
