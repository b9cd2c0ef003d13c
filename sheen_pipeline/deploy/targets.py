"""The configured deploy target (SHEEN_DEPLOY_TARGET)."""

from __future__ import annotations

from sheen_pipeline.config import Settings
from sheen_pipeline.deploy.local import LocalTarget
from sheen_pipeline.deploy.target import DeployTarget


def make_target(settings: Settings) -> DeployTarget:
    deploy = settings.deploy
    if deploy.target == "cloudflare":
        # Imported here: the SDK takes about half a second to import, which every run worker,
        # code server and CLI command would pay otherwise.
        from sheen_pipeline.deploy.cloudflare import CloudflareTarget

        return CloudflareTarget(
            deploy.cloudflare_api_token,
            deploy.cloudflare_account_id,
            deploy.cloudflare_base_url or None,
        )
    return LocalTarget(
        settings.file_limits,
        settings.preview_url,
        settings.production_url,
    )
