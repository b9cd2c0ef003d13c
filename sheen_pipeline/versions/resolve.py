"""Which build a request changes: `latest`, `production` or a build id becomes one succeeded
build of the same project when the request is accepted, or the request is refused, naming why,
before anything is spent on it."""

from __future__ import annotations

from sheen_pipeline.models import LATEST, PRODUCTION, BuildRequest, InvalidRequest
from sheen_pipeline.store.builds import BuildStatus, BuildStore, UnknownBuild
from sheen_pipeline.store.deployments import DeploymentStore
from sheen_pipeline.store.versions import VersionStore


class BaseRefused(InvalidRequest):
    """The request names a base that cannot be changed; the message says why."""


def _named_build(
    request: BuildRequest, versions: VersionStore, deployments: DeploymentStore
) -> str:
    wanted, project = request.base_build_id, request.project_id
    if wanted == LATEST:
        found = versions.latest_succeeded(project)
        if found is None:
            raise BaseRefused(f"base: project {project!r} has no succeeded build to change yet")
        return found
    if wanted == PRODUCTION:
        live = deployments.production(project)
        if live is None:
            raise BaseRefused(f"base: project {project!r} has no build in production")
        return live.build_id
    assert wanted is not None
    return wanted


def resolve_base(
    request: BuildRequest, store: BuildStore, versions: VersionStore, deployments: DeploymentStore
) -> BuildRequest:
    """The request with its base resolved to a build id (and the base's framework when it
    named none); unchanged without a base. Raises BaseRefused."""
    if request.base_build_id is None:
        return request
    build_id = _named_build(request, versions, deployments)
    try:
        base = store.get_build(build_id)
    except UnknownBuild:
        raise BaseRefused(f"base: there is no build {build_id!r}") from None
    if base.request.project_id != request.project_id:
        raise BaseRefused(
            f"base: build {build_id} belongs to project {base.request.project_id!r}, "
            f"not {request.project_id!r}"
        )
    if base.status is not BuildStatus.SUCCEEDED:
        raise BaseRefused(
            f"base: build {build_id} is {base.status.value}; only a succeeded build can be changed"
        )
    framework = base.request.framework or "static"
    if (request.framework or framework) != framework:
        raise BaseRefused(
            f"framework: a change keeps its base's framework ({framework}), got {request.framework}"
        )
    return request.model_copy(
        update={"base_build_id": build_id, "framework": base.request.framework}
    )
