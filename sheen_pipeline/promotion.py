"""Promotion: a succeeded build becomes its project's production version on the target it was
deployed to; promoting an older build is the rollback."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sheen_pipeline.events.payloads import Promoted
from sheen_pipeline.events.types import EventType
from sheen_pipeline.service import BuildService
from sheen_pipeline.store.builds import BuildStatus
from sheen_pipeline.store.deployments import Production
from sheen_pipeline.store.locks import held


class PromotionRefused(ValueError):
    """The build cannot be promoted; the message says why."""


def unchecked(service: BuildService, build_id: str) -> str | None:
    """Why the build's preview was never looked at in a browser (checks off, no browser), or
    None when its last check round ran."""
    rounds = [e for e in service.events.after(build_id) if e.type is EventType.PREVIEW_CHECKED]
    if not rounds:
        return "it has no preview checks"
    checks = rounds[-1].data["checks"]
    if checks and all(check["passed"] is None for check in checks):
        return f"its browser checks did not run ({checks[0]['message']})"
    return None


def promote(
    service: BuildService, build_id: str, promoted_by: str, force: bool = False
) -> Production:
    """Make build_id its project's production; the production record (what is live, since
    when, by whom). Production is only changed once the target has switched, and promotions of a
    project take turns from the switch to the record, so the record always names what the target
    serves. A build whose preview was never checked in a browser goes live only with force."""
    record = service.store.get_build(build_id)
    if record.status is not BuildStatus.SUCCEEDED:
        raise PromotionRefused(
            f"build {build_id} is {record.status.value}: only a succeeded build can be promoted"
        )
    why = None if force else unchecked(service, build_id)
    if why is not None:
        raise PromotionRefused(
            f"build {build_id} is not promoted: {why}; check it, or promote it with --force "
            "(force in the Launchpad) to put it in production unchecked"
        )
    deployed = service.deployments.get(build_id)
    if deployed is None:
        raise PromotionRefused(f"build {build_id} has no deployment to promote")
    if deployed.target != service.target.name:
        raise PromotionRefused(
            f"build {build_id} was deployed to {deployed.target}, and the deploy target is now "
            f"{service.target.name}: rebuild it there first"
        )
    project_id = record.request.project_id
    digest = hashlib.sha256(project_id.encode()).hexdigest()[:16]
    with held(service.store.engine, f"promotion-{digest}"):  # the record is what is live
        previous = service.deployments.production(project_id)
        url = service.target.promote(project_id, deployed)  # a DeployError changes nothing
        live = Production(
            project_id, build_id, deployed.target, url, promoted_by, datetime.now(UTC)
        )
        service.deployments.set_production(live)
    service.events.emit(
        build_id,
        Promoted(
            project_id=project_id,
            target=deployed.target,
            production_url=url,
            promoted_by=promoted_by,
            previous_build_id=previous.build_id if previous else None,
        ),
    )
    return live
