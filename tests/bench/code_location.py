"""Benchmark: how long the code location takes to load (import, list its jobs, snapshot the
repository as a code server does for the UI) with few and with many stored plans. Each load runs
in a fresh process, as `dagster dev` starts its code server.

    .venv/bin/python -m tests.bench.code_location [--plans 5 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.conftest import REPO_ROOT

LOAD = """
import json, time
started = time.perf_counter()
from dagster._core.remote_representation.external_data import RepositorySnap
from sheen_pipeline.defs import sheen
imported = time.perf_counter()
snap = RepositorySnap.from_def(sheen)
print(json.dumps({"import_s": imported - started, "snapshot_s": time.perf_counter() - imported,
                  "jobs": len(snap.job_datas or [])}))
"""


def _store_plans(home: Path, count: int) -> None:
    from sheen_pipeline.store.builds import BuildStore
    from tests.support.builds import store_offline_plans

    store = BuildStore(f"sqlite:///{home / 'sheen.db'}")
    store_offline_plans(store, [f"bench{number:05d}" for number in range(count)])


def measure(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        _store_plans(home, count)
        env = {**os.environ, "SHEEN_HOME": str(home), "DAGSTER_HOME": str(home)}
        env.pop("SHEEN_DATABASE_URL", None)
        loads = [
            json.loads(
                subprocess.run(
                    [sys.executable, "-c", LOAD],
                    env=env,
                    cwd=REPO_ROOT,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.splitlines()[-1]
            )
            for _ in range(3)
        ]
    best = min(loads, key=lambda load: load["import_s"] + load["snapshot_s"])
    return {"plans": count, **best, "load_s": best["import_s"] + best["snapshot_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plans", type=int, nargs="+", default=[5, 5000])
    args = parser.parse_args()
    rows = [measure(count) for count in args.plans]
    print("| stored plans | jobs listed | import s | snapshot s | load s (best of 3) |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['plans']} | {row['jobs']} | {row['import_s']:.2f} | "
            f"{row['snapshot_s']:.2f} | {row['load_s']:.2f} |"
        )
    print(json.dumps({"benchmark": "code_location", "loads": rows}))


if __name__ == "__main__":
    main()
