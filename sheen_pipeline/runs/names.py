"""Dagster names for our ids, by one injective rule.

Build and task ids may contain '-' (UUIDs do); Dagster names allow only [A-Za-z0-9_]. An id
without '-' is used as it is, readable in the UI. An id with one is escaped: a leading '_' (which no
valid id starts with), then '_' written as '_0' and '-' as '__'. Every valid id gives a valid name,
distinct ids give distinct names, and every name maps back to its id.
"""

from __future__ import annotations

import re

from sheen_pipeline.models import SAFE_ID_PATTERN

PLAN_JOB_NAME = "plan_build"
PROMOTE_JOB_NAME = "promote_build"
BUILD_JOB_PREFIX = "build_"
_ESCAPES = {"_": "_0", "-": "__"}
_UNESCAPES = {code: char for char, code in _ESCAPES.items()}


def dagster_name(value: str) -> str:
    """The Dagster name of a build or task id."""
    if "-" not in value:
        return value
    return "_" + "".join(_ESCAPES.get(char, char) for char in value)


def id_from_dagster_name(name: str) -> str | None:
    """The id a name was made from, or None when no valid id gives this name."""
    if name.startswith("_"):
        if not re.fullmatch(r"(?:[A-Za-z0-9]|_0|__)+", name[1:]):
            return None
        value = re.sub(r"_[0_]", lambda match: _UNESCAPES[match.group()], name[1:])
    else:
        value = name
    if not re.fullmatch(SAFE_ID_PATTERN, value) or dagster_name(value) != name:
        return None
    return value


def build_job_name(build_id: str) -> str:
    return BUILD_JOB_PREFIX + dagster_name(build_id)


def build_id_from_job_name(job_name: str) -> str | None:
    """The build id of a `build_<id>` job name, or None when it is not one."""
    if not job_name.startswith(BUILD_JOB_PREFIX):
        return None
    return id_from_dagster_name(job_name.removeprefix(BUILD_JOB_PREFIX))
