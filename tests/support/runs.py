"""Helpers to read what happened in a Dagster run."""

from __future__ import annotations

from dagster import DagsterEventType, DagsterInstance


def steps_with(instance: DagsterInstance, run_id: str, event_type: DagsterEventType) -> set[str]:
    return {
        entry.step_key
        for entry in instance.all_logs(run_id, of_type=event_type)
        if entry.step_key is not None
    }


def succeeded_steps(instance: DagsterInstance, run_id: str) -> set[str]:
    return steps_with(instance, run_id, DagsterEventType.STEP_SUCCESS)


def started_steps(instance: DagsterInstance, run_id: str) -> set[str]:
    return steps_with(instance, run_id, DagsterEventType.STEP_START)
