"""Where runs of this code location come from: jobs rebuilt by name from the code location
module, and origins naming the location of workspace.yaml, as a run launched by the UI has
them (the UI's re-execution reads the location and repository names from them)."""

from __future__ import annotations

import os
import sys

from dagster import JobDefinition
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from dagster._core.origin import JobPythonOrigin
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from sheen_pipeline.runs.tags import CODE_MODULE, LOCATION_NAME, REPOSITORY_NAME


def reconstructable_job(job_name: str) -> ReconstructableJob:
    """A job any process can rebuild by name from the code location module."""
    repository = ReconstructableRepository.for_module(
        CODE_MODULE, REPOSITORY_NAME, working_directory=os.getcwd()
    )
    return repository.get_reconstructable_job(job_name)


def job_named(job_name: str) -> JobDefinition:
    """The code location's job of that name (a build's job is made from its stored plan)."""
    return reconstructable_job(job_name).get_definition()


def local_origins(job_name: str) -> tuple[RemoteJobOrigin, JobPythonOrigin]:
    loadable = LoadableTargetOrigin(
        executable_path=sys.executable, module_name=CODE_MODULE, working_directory=os.getcwd()
    )
    location = ManagedGrpcPythonEnvCodeLocationOrigin(loadable, LOCATION_NAME)
    remote = RemoteRepositoryOrigin(location, REPOSITORY_NAME).get_job_origin(job_name)
    return remote, reconstructable_job(job_name).get_python_origin()
