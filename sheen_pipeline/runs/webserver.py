"""Ask a running Dagster webserver to reload the code location, so new build jobs show up."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from dagster_graphql import (
    DagsterGraphQLClient,
    DagsterGraphQLClientError,
    ReloadRepositoryLocationStatus,
)

from sheen_pipeline.runs.tags import LOCATION_NAME


def reload_code_location(webserver_url: str, timeout_s: int = 30) -> str | None:
    """None when the webserver reloaded; otherwise why not (the caller logs it)."""
    url = urlsplit(webserver_url)
    try:
        client = DagsterGraphQLClient(
            url.hostname or "127.0.0.1",
            port_number=url.port,
            use_https=url.scheme == "https",
            path_prefix=url.path.rstrip("/"),
            timeout=timeout_s,
        )
        answer = client.reload_repository_location(LOCATION_NAME)
    except (DagsterGraphQLClientError, requests.RequestException, ValueError) as error:
        return f"{type(error).__name__}: {error}"
    if answer.status is ReloadRepositoryLocationStatus.SUCCESS:
        return None
    return str(answer.message or answer.failure_type)
