"""Pool limits set by commands started at once on a fresh instance: each finds no limit yet, and
the one that adds Dagster's row second is told it exists; every command still goes on."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from dagster import DagsterInstance
from sqlalchemy import Engine, event

from sheen_pipeline.config import Settings
from sheen_pipeline.runs.pools import pool_limits, set_pool_limits


@pytest.mark.parametrize("only_missing", [True, False])
def test_two_commands_setting_the_pool_limits_at_once_both_go_on(
    instance: DagsterInstance, sheen_home: object, only_missing: bool
) -> None:
    settings = Settings.from_env()
    first_paused, second_done = threading.Event(), threading.Event()
    first: list[threading.Thread] = []

    def hold_the_first_insert(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        """The first command adds its row only after the second has added its own."""
        if not statement.lstrip().upper().startswith("INSERT INTO CONCURRENCY_LIMITS"):
            return
        if not first:
            first.append(threading.current_thread())
            first_paused.set()
            second_done.wait(30)

    def second() -> None:
        first_paused.wait(30)
        try:
            set_pool_limits(instance, settings, only_missing=only_missing)
        finally:
            second_done.set()

    other = threading.Thread(target=second)
    event.listen(Engine, "before_cursor_execute", hold_the_first_insert)
    try:
        other.start()
        applied = set_pool_limits(instance, settings, only_missing=only_missing)
    finally:
        event.remove(Engine, "before_cursor_execute", hold_the_first_insert)
        other.join(60)
    assert first_paused.is_set() and second_done.is_set()
    storage = instance.event_log_storage
    limits = {pool: storage.get_concurrency_info(pool).slot_count for pool in pool_limits(settings)}
    assert limits == pool_limits(settings)
    if only_missing:
        assert "plan" not in applied  # the other command's limit stands
    else:
        assert applied == pool_limits(settings)
