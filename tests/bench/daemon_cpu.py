"""Benchmark: where a build's CPU goes when it runs through the Dagster daemon, on the embedded
default (SQLite, offline provider, browser checks on, the repository's dagster.yaml). Request
rows are inserted at once after a warm-up; every process the daemon starts runs in a cgroup of
its own, so the total is exact (cpuacct), and /proc is sampled to split it by process: the
daemon (sensors, run queue), code servers, run workers (forked by the run forker), the
browser and the sandboxed build. With --profile, py-spy samples every Python process of the daemon's tree and
splits their CPU by what they were doing (imports, code location, event log, executor, sensors,
the build's own work). Needs root (cgroup v1 cpuacct).

    .venv/bin/python -m tests.bench.daemon_cpu [--builds 20] [--warmup 2] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sheen_pipeline.models import new_build_id, parse_build_request
from sheen_pipeline.store.requests import RequestStore, new_request_id
from tests.bench.burst import ENDED, PROMPTS, statuses
from tests.conftest import REPO_ROOT
from tests.support.processes import running, sheen, sheen_cli_env

CPUACCT = Path("/sys/fs/cgroup/cpuacct")
TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.2
BIN = Path(sys.executable).parent
RUN_WORKERS = "run workers (a plan run and a build run per build)"
# process kinds, by what their command line contains (first match wins)
KINDS = (
    (RUN_WORKERS, ("spawn_main",)),
    (RUN_WORKERS, ("run_forker",)),
    (RUN_WORKERS, ("execute_run",)),
    ("code server", ("api grpc",)),
    ("code server", ("code-server",)),
    ("daemon", ("dagster-daemon",)),
    ("daemon", ("dagster._daemon",)),
    ("browser", ("chromium",)),
    ("browser", ("playwright",)),
    ("sandboxed build", ("bwrap",)),
    ("sandboxed build", ("npm",)),
)
# what a Python process was doing, by the frames of a py-spy sample (first match wins)
ACTIVITIES = (
    ("imports", ("_find_and_load",)),
    ("sensors", ("dagster/_daemon/sensor.py", "sheen_pipeline/defs/sensors.py")),
    ("code location load", ("sheen_pipeline/defs/repository.py", "repository_data")),
    ("browser checks", ("sheen_pipeline/checks/",)),
    ("event log writes", ("_core/storage/event_log", "store_event")),
    ("build's own work", ("sheen_pipeline/",)),
    ("executor and step machinery", ("dagster_async_executor", "_core/execution")),
    ("run worker start and run set-up", ("spawn_main",)),
    ("daemon loops and gRPC serving", ("dagster/_daemon", "grpc")),
)


def kind_of(cmdline: str) -> str:
    for kind, marks in KINDS:
        if all(mark in cmdline for mark in marks):
            return kind
    return "other"


@dataclass
class Process:
    kind: str
    cpu_s: float = 0.0
    at_start_s: float = 0.0  # its CPU when the measured window opened
    peak_rss_mb: float = 0.0
    # what it does not share with another process (a forked run worker shares the forker's
    # imported modules, which its RSS counts in full)
    peak_private_mb: float = 0.0


def private_mb(pid: int) -> float:
    fields = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    kb = sum(
        int(f.split()[1]) for f in fields if f.startswith(("Private_Clean:", "Private_Dirty:"))
    )
    return kb / 1024


@dataclass
class Sampler:
    """The cgroup's processes, read from /proc every SAMPLE_S until stopped."""

    group: Path
    processes: dict[int, Process] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        for pid in map(int, (self.group / "cgroup.procs").read_text().split()):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                status = Path(f"/proc/{pid}/status").read_text()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                private = private_mb(pid)
            except OSError:
                continue  # ended between the listing and the read
            process = self.processes.setdefault(pid, Process(kind_of(cmdline.decode())))
            process.cpu_s = (int(stat[11]) + int(stat[12])) / TICKS
            process.peak_private_mb = max(process.peak_private_mb, private)
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    process.peak_rss_mb = max(process.peak_rss_mb, int(line.split()[1]) / 1024)

    def open_window(self) -> None:
        self.sample()
        for process in self.processes.values():
            process.at_start_s = process.cpu_s

    def run(self) -> None:
        while not self.stop.wait(SAMPLE_S):
            self.sample()


def cgroup_cpu_s(group: Path) -> float:
    return int((group / "cpuacct.usage").read_text()) / 1e9


@contextmanager
def cpu_group() -> Iterator[Path]:
    group = CPUACCT / f"sheen-bench-{os.getpid()}"
    group.mkdir()
    try:
        yield group
    finally:
        deadline = time.monotonic() + 30  # stopped processes may take a moment to go
        while time.monotonic() < deadline:
            for pid in (group / "cgroup.procs").read_text().split():
                (CPUACCT / "cgroup.procs").write_text(pid)
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.5)


def add_rows(store: RequestStore, count: int, offset: int) -> None:
    for n in range(offset, offset + count):
        prompt = f"{PROMPTS[n % len(PROMPTS)]} number {n}"  # unique: no result cache hits
        store.add(parse_build_request(prompt=prompt), new_request_id(), new_build_id())


def wait_until_ended(store: RequestStore, count: int, timeout_s: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen = statuses(store)
        if sum(seen.get(status, 0) for status in ENDED) >= count:
            return seen
        time.sleep(0.5)
    raise TimeoutError(f"builds not ended after {timeout_s} s: {statuses(store)}")


@dataclass
class Result:
    builds: int
    wall_s: float
    total_cpu_s: float
    by_kind: dict[str, float]
    processes_by_kind: dict[str, int]
    peak_rss_mb: dict[str, float]
    peak_private_mb: dict[str, float]
    statuses: dict[str, int]
    activities: dict[str, float] = field(default_factory=dict)

    @property
    def per_build(self) -> float:
        return self.total_cpu_s / self.builds


def run(builds: int, warmup: int, profile: bool, timeout_s: float) -> tuple[Result, list[str]]:
    workdir = Path(tempfile.mkdtemp(prefix="sheen-daemon-cpu-"))
    env = sheen_cli_env(workdir, SHEEN_PREVIEW_CHECKS="on")
    shutil.copy(REPO_ROOT / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    assert sheen(env, "init").returncode == 0
    store = RequestStore(f"sqlite:///{Path(env['SHEEN_HOME']) / 'sheen.db'}")
    daemon = [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"]
    with cpu_group() as group:
        sampler = Sampler(group)
        joined = f'echo $$ > {group / "cgroup.procs"} && exec "$@"'
        with running(["sh", "-c", joined, "sh", *daemon], env, workdir / "daemon.log") as process:
            threading.Thread(target=sampler.run, daemon=True).start()
            add_rows(store, warmup, 0)
            wait_until_ended(store, warmup, timeout_s)
            sampler.open_window()
            before, started = cgroup_cpu_s(group), time.monotonic()
            with py_spy(process.pid, workdir / "profile.txt", profile) as samples:
                add_rows(store, builds, warmup)
                ended = wait_until_ended(store, warmup + builds, timeout_s)
                wall_s, total = time.monotonic() - started, cgroup_cpu_s(group) - before
            sampler.stop.set()
            sampler.sample()
    shutil.rmtree(workdir, ignore_errors=True)
    by_kind: dict[str, float] = defaultdict(float)
    counts: Counter[str] = Counter()
    peaks: dict[str, float] = defaultdict(float)
    private_peaks: dict[str, float] = defaultdict(float)
    for process in sampler.processes.values():
        used = process.cpu_s - process.at_start_s
        by_kind[process.kind] += used
        counts[process.kind] += used > 0
        peaks[process.kind] = max(peaks[process.kind], process.peak_rss_mb)
        private_peaks[process.kind] = max(private_peaks[process.kind], process.peak_private_mb)
    by_kind["not sampled (ended within 0.2 s of a sample)"] = total - sum(by_kind.values())
    python_cpu = sum(v for k, v in by_kind.items() if k in PYTHON_KINDS)
    shares = activity_shares(samples)
    return Result(
        builds,
        wall_s,
        total,
        dict(by_kind),
        dict(counts),
        dict(peaks),
        dict(private_peaks),
        ended,
        {activity: share * python_cpu for activity, share in shares.items()},
    ), samples


PYTHON_KINDS = ("daemon", "code server", RUN_WORKERS)


@contextmanager
def py_spy(pid: int, output: Path, enabled: bool) -> Iterator[list[str]]:
    """py-spy sampling the daemon and every process it starts, while the block runs; only
    samples holding the GIL count, so threads waiting on a lock or a socket are left out."""
    samples: list[str] = []
    if not enabled:
        yield samples
        return
    command = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--subprocesses", "--rate", "50"]
    command += ["--gil", "--nonblocking", "--format", "raw", "--output", str(output)]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield samples
    finally:
        spy.send_signal(2)  # py-spy writes its samples on SIGINT
        spy.wait(timeout=120)
        samples.extend(output.read_text().splitlines())


def activity_shares(samples: list[str]) -> dict[str, float]:
    """Each activity's share of the Python processes' samples (py-spy's raw lines end with a
    count)."""
    counts: Counter[str] = Counter()
    for line in samples:
        stack, _, count = line.rpartition(" ")
        activity = next(
            (name for name, marks in ACTIVITIES if any(mark in stack for mark in marks)),
            "other Python",
        )
        counts[activity] += int(count)
    total = sum(counts.values())
    return {activity: n / total for activity, n in counts.most_common()} if total else {}


def report(result: Result) -> None:
    print(f"| {result.builds} builds through the daemon | CPU-s per build | processes |")
    print("|---|---|---|")
    for kind, cpu in sorted(result.by_kind.items(), key=lambda item: -item[1]):
        count = result.processes_by_kind.get(kind, "")
        print(f"| {kind} | {cpu / result.builds:.2f} | {count} |")
    print(f"| **total** | **{result.per_build:.2f}** | |")
    if result.activities:
        print("\n| Python processes, by what they were doing (py-spy) | CPU-s per build |")
        print("|---|---|")
        for activity, cpu in result.activities.items():
            print(f"| {activity} | {cpu / result.builds:.2f} |")
    per_minute = 60 * result.builds / result.wall_s
    print(
        f"\nwall {result.wall_s:.0f} s, {per_minute:.1f} builds a minute, "
        f"statuses {json.dumps(result.statuses, sort_keys=True)}; peak memory (MB) by kind, "
        "resident (of it private): "
        + ", ".join(
            f"{kind} {mb:.0f} ({result.peak_private_mb[kind]:.0f})"
            for kind, mb in sorted(result.peak_rss_mb.items())
        )
    )
    print(
        json.dumps(
            {
                "benchmark": "daemon_cpu",
                "builds": result.builds,
                "cpu_s_per_build": round(result.per_build, 2),
                "builds_per_minute": round(per_minute, 2),
                "wall_s": round(result.wall_s, 1),
                "by_kind_per_build": {
                    k: round(v / result.builds, 2) for k, v in result.by_kind.items()
                },
                "activities_per_build": {
                    k: round(v / result.builds, 2) for k, v in result.activities.items()
                },
                "peak_rss_mb": {k: round(v) for k, v in result.peak_rss_mb.items()},
                "peak_private_mb": {k: round(v) for k, v in result.peak_private_mb.items()},
                "statuses": result.statuses,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="split Python CPU with py-spy")
    parser.add_argument("--profile-out", type=Path, help="keep py-spy's raw samples here")
    parser.add_argument("--timeout-s", type=float, default=1800)
    args = parser.parse_args()
    result, samples = run(
        args.builds, args.warmup, args.profile or bool(args.profile_out), args.timeout_s
    )
    if args.profile_out:
        args.profile_out.write_text("\n".join(samples))
    report(result)


if __name__ == "__main__":
    main()
