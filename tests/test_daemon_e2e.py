"""End to end the way production runs: rows submitted to build_requests (by `sheen submit`, and by
the main app with its own build ids: a dash, a UUID), `dagster dev` (webserver, daemon with its
sensors and run queue, code server) started by the test, and the global `llm` pool holding across
concurrent builds."""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

from sheen_pipeline.models import parse_build_request
from sheen_pipeline.runs.webserver import reload_code_location
from sheen_pipeline.store.requests import RequestStore, new_request_id
from tests.conftest import REPO_ROOT
from tests.support.builds import deployed_page
from tests.support.processes import running, sheen_cli_env, sheen_here
from tests.support.providers import max_in_flight
from tests.support.waiting import free_port, wait_for

BUILDS = 3
LLM_LIMIT = 2


def test_three_submitted_rows_become_three_builds_within_the_llm_pool(tmp_path: Path) -> None:
    """...and a change of the newest of them, submitted as a row, becomes its next version."""
    env = sheen_cli_env(
        tmp_path,
        SHEEN_TEST_PROVIDER="tests.support.providers:ProbeOfflineProvider",
        SHEEN_TEST_TASK_SLEEP_S="1",
        SHEEN_POOL_LLM_LIMIT=str(LLM_LIMIT),
    )
    shutil.copy(REPO_ROOT / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    init = sheen_here(env, "init")
    assert init.returncode == 0, init.stderr
    assert init.stdout.splitlines() == [
        "artifact store: the app database",
        f"pools: plan=2, llm={LLM_LIMIT}",
    ]
    prompts = ["a blog about tea"]
    for prompt in prompts:
        assert sheen_here(env, "submit", prompt).returncode == 0
    store = RequestStore(f"sqlite:///{Path(env['SHEEN_HOME']) / 'sheen.db'}")
    app_rows = {"c2a-b0000": "a portfolio for Ada Lovelace", str(uuid.uuid4()): "a dashboard"}
    for build_id, prompt in app_rows.items():
        store.add(parse_build_request(prompt=prompt), new_request_id(), build_id)
    prompts += app_rows.values()
    before = sheen_here(env, "status")
    assert "warning: no recent heartbeat from the Dagster daemon" in before.stderr

    def all_finished() -> bool:
        statuses = [r.status for r in store.recent(10)]
        return len(statuses) == BUILDS and all(s in ("succeeded", "failed") for s in statuses)

    dagster = str(Path(sys.executable).parent / "dagster")
    args = [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(free_port())]
    with running(args, env, tmp_path / "dagster-dev.log"):
        wait_for(all_finished, 300, "three builds to finish")
        change = sheen_here(env, "submit", "--from", "latest", "make the header dark green")
        assert change.returncode == 0, change.stderr
        wait_for(lambda: store.recent(1)[0].status in ("succeeded", "failed"), 120, "the change")

    changed, *records = store.recent(10)
    assert changed.status == "succeeded", changed.error
    assert changed.base_build_id in {r.build_id for r in records}  # resolved at submit
    assert "--primary: #1f5f3a;" in deployed_page(changed.build_id, "styles.css", env=env)
    assert [r.status for r in records] == ["succeeded"] * BUILDS, [r.error for r in records]
    assert sorted(r.prompt for r in records) == sorted(prompts)
    assert set(app_rows) <= {r.build_id for r in records}
    assert all("<h1>" in deployed_page(r.build_id, env=env) for r in records)
    peak = max_in_flight(Path(env["SHEEN_HOME"]))
    assert peak <= LLM_LIMIT, f"{peak} task calls ran at once with the llm pool at {LLM_LIMIT}"
    status = sheen_here(env, "status")
    assert status.stdout.count("succeeded") == BUILDS + 1


def test_requests_launched_while_the_code_location_reloads_are_not_lost(tmp_path: Path) -> None:
    """Reloads restart the code server that runs the sensors and that the run queue checks before
    each launch: at every move while the rows are picked up and launched, while every build is
    running (held at a gate until then), and as they finish. Every request still ends succeeded."""
    port = free_port()
    env = sheen_cli_env(
        tmp_path,
        SHEEN_TEST_PROVIDER="tests.support.providers:GatedOfflineProvider",
        SHEEN_TEST_GATE_TASK="index_page",
    )
    shutil.copy(REPO_ROOT / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    assert sheen_here(env, "init").returncode == 0
    store = RequestStore(f"sqlite:///{Path(env['SHEEN_HOME']) / 'sheen.db'}")
    prompts = [f"a blog about tea number {n}" for n in range(3)]

    def statuses() -> list[str]:
        return [r.status for r in store.recent(10)]

    def all_in(wanted: tuple[str, ...]) -> bool:
        return all(s in wanted for s in statuses())

    dagster = str(Path(sys.executable).parent / "dagster")
    args = [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    url = f"http://127.0.0.1:{port}"
    reloads: list[str | None] = []  # None for each reload done, else why it was refused

    def reload() -> str | None:
        # A reload waits for the new code server; on a loaded 2-core machine that can take
        # longer than the 30 s `sheen watch` allows it.
        return reload_code_location(url, timeout_s=180)

    launched = ("building", "failed")

    def moved(seen: list[str]) -> bool:
        return statuses() != seen or all_in(launched)

    with running(args, env, tmp_path / "dagster-dev.log"):
        wait_for(lambda: reload() is None, 180, "the Dagster webserver")
        for prompt in prompts:  # once the UI is up: its start can outlast the daemon's pick-up
            store.add(parse_build_request(prompt=prompt), new_request_id(), str(uuid.uuid4()))
        seen = statuses()
        while not all_in(launched):  # a reload at every move: each launch meets a new server
            reloads.append(reload())
            wait_for(lambda seen=seen: moved(seen), 120, "the requests to move on")
            seen = statuses()
        reloads.append(reload())  # every build's run in flight
        (Path(env["SHEEN_HOME"]) / "gate-open").touch()
        reloads.append(reload())  # and as they finish
        wait_for(lambda: all_in(("succeeded", "failed")), 120, "the builds to finish")
    records = store.recent(10)
    assert [r.status for r in records] == ["succeeded"] * len(prompts), [r.error for r in records]
    assert reloads.count(None) >= 3, reloads
