"""Reading versions over HTTP: a project's tree of versions (the operator's SHEEN_API_TOKEN) and
one build's diff against its base (as any read of that build: the token or its read token)."""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sheen_pipeline.api.auth import ReadAccess, unauthorized
from sheen_pipeline.models import SAFE_ID_PATTERN
from sheen_pipeline.store.builds import BuildStore, UnknownBuild
from sheen_pipeline.store.deployments import DeploymentStore
from sheen_pipeline.store.files import BuildFiles
from sheen_pipeline.store.versions import VersionStore
from sheen_pipeline.versions.diff import diff_of_build
from sheen_pipeline.versions.listing import project_versions


class VersionsApi:
    def __init__(
        self,
        builds: BuildStore,
        versions: VersionStore,
        files: BuildFiles,
        deployments: DeploymentStore,
        access: ReadAccess,
    ) -> None:
        self.builds, self.versions, self.files = builds, versions, files
        self.deployments, self.access = deployments, access

    async def project(self, request: Request) -> Response:
        project_id: str = request.path_params["project_id"]
        if not self.access.allows_operator(request):
            return unauthorized("send SHEEN_API_TOKEN as a bearer token")
        if not re.fullmatch(SAFE_ID_PATTERN, project_id):
            return JSONResponse({"error": f"no project {project_id}"}, status_code=404)
        found = await run_in_threadpool(
            project_versions, project_id, self.versions, self.files, self.deployments
        )
        if not found:
            return JSONResponse({"error": f"no project {project_id}"}, status_code=404)
        return JSONResponse({"project_id": project_id, "versions": [v.as_json() for v in found]})

    async def diff(self, request: Request) -> Response:
        build_id: str = request.path_params["build_id"]
        if not self.access.allows(request, build_id):
            return unauthorized()
        try:
            record = await run_in_threadpool(self.builds.get_build, build_id)
        except UnknownBuild:
            return JSONResponse({"error": f"no build {build_id}"}, status_code=404)
        base_id = record.request.base_build_id
        if base_id is None:
            return JSONResponse(
                {"error": f"build {build_id} was built from scratch: it has no base"},
                status_code=404,
            )
        changes = await run_in_threadpool(diff_of_build, build_id, base_id, self.files)
        return JSONResponse(
            {
                "build_id": build_id,
                **changes.summary(),
                "added": list(changes.added),
                "changed": list(changes.changed),
                "removed": list(changes.removed),
                "diff": changes.text,
            }
        )
