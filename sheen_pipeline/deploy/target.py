"""What a deploy target does (publish a build's files at a preview URL of its own; make a
deployed build its project's production version), and what a deploy reports."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path, PurePosixPath
from typing import Protocol

from sheen_pipeline.models import Deployed


class DeployError(RuntimeError):
    """A deploy or promotion failed; the message says why and never holds a credential."""


class DeployTarget(Protocol):
    name: str

    def deploy(self, project_id: str, build_id: str, dist: Path) -> Deployed:
        """Publish the files of dist as this build's preview; production is never touched,
        so a failed deploy leaves it as it was."""
        ...

    def promote(self, project_id: str, deployed: Deployed) -> str:
        """Make a deployed build the project's production version; its production URL."""
        ...


def asset_hash(path: str, content: bytes) -> str:
    """The content address Cloudflare's direct upload uses: SHA-256 of the base64 content
    followed by the extension, first 32 hex digits (so a.txt and a.html are two assets)."""
    extension = PurePosixPath(path).suffix.removeprefix(".")
    encoded = base64.b64encode(content).decode() + extension
    return hashlib.sha256(encoded.encode()).hexdigest()[:32]
