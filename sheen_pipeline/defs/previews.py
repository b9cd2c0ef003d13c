"""Each project's preview and production as assets of the code location, with the browser
checks declared on the preview, so the UI lists them under the location (the build job reports
each check's evaluation at run time; executing a check from the UI re-checks the project's
newest deployed build)."""

from collections.abc import Iterator, Sequence

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetSpec,
    multi_asset_check,
)

from sheen_pipeline.checks.results import BLOCKING, CHECKS, DESCRIPTIONS
from sheen_pipeline.defs.resources import BuildServiceResource

GROUP = "sheen_projects"


def preview_key(project_id: str) -> AssetKey:
    return AssetKey(["sheen", project_id, "preview"])


def project_assets(project_ids: Sequence[str]) -> list[AssetSpec]:
    specs = []
    for project_id in project_ids:
        specs.append(
            AssetSpec(
                preview_key(project_id),
                group_name=GROUP,
                description=f"Every build of {project_id}: its preview URL, files, cost, checks.",
            )
        )
        specs.append(
            AssetSpec(
                ["sheen", project_id, "production"],
                group_name=GROUP,
                description=f"What {project_id} serves in production (sheen promote).",
            )
        )
    return specs


def preview_checks(project_ids: Sequence[str]) -> list[AssetChecksDefinition]:
    if not project_ids:
        return []
    specs = [
        AssetCheckSpec(
            name,
            asset=preview_key(project_id),
            description=DESCRIPTIONS[name],
            blocking=name in BLOCKING,
        )
        for project_id in project_ids
        for name in CHECKS
    ]

    @multi_asset_check(specs=specs, can_subset=True, name="preview_checks")
    def recheck(
        context: AssetCheckExecutionContext, sheen: BuildServiceResource
    ) -> Iterator[AssetCheckResult]:
        """Re-check the newest deployed build of each selected project."""
        wanted: set[AssetCheckKey] = set(context.selected_asset_check_keys)
        for asset_key in sorted({key.asset_key for key in wanted}, key=str):
            project_id = asset_key.path[1]
            build_id = sheen.service.deployments.latest(project_id)
            plan = None if build_id is None else sheen.service.store.get_plan(build_id)
            if plan is None:
                continue
            for result in sheen.service.check_preview(plan).results:
                if AssetCheckKey(asset_key, result.name) in wanted:
                    yield AssetCheckResult(
                        asset_key=asset_key,
                        check_name=result.name,
                        passed=bool(result.passed),
                        severity=AssetCheckSeverity.ERROR
                        if result.blocking
                        else AssetCheckSeverity.WARN,
                        description=result.message,
                        metadata={"build_id": build_id, "not_run": result.passed is None},
                    )

    return [recheck]
