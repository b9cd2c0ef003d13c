"""Benchmark: how close a build's task phase comes to its critical path. Each case is a real
`sheen build` on the embedded default, with a provider whose task calls take a set latency
(SHEEN_TEST_TASK_SLEEP_S) and are recorded; also how soon `sheen build` shows its first
`plan_partial` (offline provider) and how long an identical rebuild takes.

    .venv/bin/python -m tests.bench.parallel [--latency-s 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import networkx as nx

from tests.conftest import REPO_ROOT
from tests.support.processes import SHEEN, sheen, sheen_cli_env
from tests.support.providers import max_in_flight

SHAPED = "tests.support.providers:ShapedProbeProvider"
OFFLINE_PROBE = "tests.support.providers:ProbeOfflineProvider"
LANDING_PROMPT = "a landing page for Blue Fern Coffee in Portland, with a signup form and a menu"


@dataclass
class Case:
    name: str
    shape: str
    latency_s: float
    tasks: int
    task_phase_s: float
    critical_path_s: float
    one_by_one_s: float
    most_in_flight: int

    @property
    def ratio(self) -> float:
        return self.task_phase_s / self.critical_path_s

    @property
    def speed_up(self) -> float:
        return self.one_by_one_s / self.task_phase_s


def _calls(home: Path) -> list[dict[str, float]]:
    return [json.loads(p.read_text()) for p in (home / "probe").glob("*.json")]


def _critical_path_s(home: Path, build_id: str, latency_s: float) -> float:
    """Latency times the most tasks on one dependency path of the stored plan."""
    from sheen_pipeline.store.builds import BuildStore

    plan = BuildStore(f"sqlite:///{home / 'sheen.db'}").get_plan(build_id)
    assert plan is not None
    graph = nx.DiGraph()
    graph.add_nodes_from(t.id for t in plan.tasks)
    graph.add_edges_from((d, t.id) for t in plan.tasks for d in t.input.dependencies)
    return (nx.dag_longest_path_length(graph) + 1) * latency_s


def embedded_env(**overrides: str) -> dict[str, str]:
    """A fresh SHEEN_HOME and Dagster instance configured by this repository's dagster.yaml."""
    env = sheen_cli_env(Path(tempfile.mkdtemp(prefix="sheen-bench-")), **overrides)
    shutil.copy(REPO_ROOT / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    return env


def run_case(name: str, provider: str, shape: str, prompt: str, latency_s: float) -> Case:
    env = embedded_env(
        SHEEN_TEST_PROVIDER=provider,
        SHEEN_TEST_PLAN_SHAPE=shape,
        SHEEN_TEST_TASK_SLEEP_S=str(latency_s),
    )
    result = sheen(env, "build", prompt, "--json")
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["status"] == "succeeded", summary["error"]
    home = Path(env["SHEEN_HOME"])
    calls = _calls(home)
    return Case(
        name=name,
        shape=shape or "offline landing page",
        latency_s=latency_s,
        tasks=len(calls),
        task_phase_s=max(c["end"] for c in calls) - min(c["start"] for c in calls),
        critical_path_s=_critical_path_s(home, summary["build_id"], latency_s),
        one_by_one_s=sum(c["end"] - c["start"] for c in calls),
        most_in_flight=max_in_flight(home),
    )


@dataclass
class FirstFeedback:
    first_plan_partial_s: float
    whole_build_s: float
    identical_rebuild_s: float


def _timed_build(env: dict[str, str]) -> tuple[float | None, float]:
    """Seconds to the first plan_partial line and to the end of `sheen build`."""
    started = time.monotonic()
    first: float | None = None
    with subprocess.Popen(
        [SHEEN, "build", LANDING_PROMPT], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if first is None and line.startswith("plan_partial"):
                first = time.monotonic() - started
    assert process.returncode == 0
    return first, time.monotonic() - started


def first_feedback() -> FirstFeedback:
    env = embedded_env()
    first, whole = _timed_build(env)
    _, rebuild = _timed_build(env)
    assert first is not None, "sheen build printed no plan_partial"
    return FirstFeedback(round(first, 2), round(whole, 2), round(rebuild, 2))


def report(cases: list[Case], feedback: FirstFeedback) -> None:
    print(
        "| case | tasks | latency | task phase | critical path | ratio | speed-up over one by "
        "one | most in flight |\n|---|---|---|---|---|---|---|---|"
    )
    for c in cases:
        print(
            f"| {c.name} ({c.shape}) | {c.tasks} | {c.latency_s:g} s | {c.task_phase_s:.1f} s | "
            f"{c.critical_path_s:.0f} s | {c.ratio:.2f} | {c.speed_up:.1f}x | {c.most_in_flight} |"
        )
    print(
        f"\n`sheen build` (offline, no latency): first `plan_partial` after "
        f"{feedback.first_plan_partial_s} s, whole build {feedback.whole_build_s} s, identical "
        f"rebuild {feedback.identical_rebuild_s} s."
    )
    rows = [{**asdict(c), "ratio": c.ratio, "speed_up": c.speed_up} for c in cases]
    print(json.dumps({"benchmark": "parallel", "cases": rows, "first_feedback": asdict(feedback)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--latency-s", type=float, default=5.0)
    args = parser.parse_args()
    latency = args.latency_s
    cases = [
        run_case("4 levels x 5", SHAPED, "levels:4x5", "twenty tasks", latency),
        run_case("landing page", OFFLINE_PROBE, "", LANDING_PROMPT, latency),
        run_case("chain of 5", SHAPED, "chain:5", "five tasks in a row", latency),
    ]
    report(cases, first_feedback())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
