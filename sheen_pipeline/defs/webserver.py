"""Ask a running Dagster webserver to reload the code location, so new build jobs show up."""

from __future__ import annotations

import requests

from sheen_pipeline.defs.tags import LOCATION_NAME

RELOAD = """
mutation($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) {
    __typename
    ... on PythonError { message }
  }
}"""


def reload_code_location(webserver_url: str, timeout_s: float = 30.0) -> str | None:
    """None when the webserver reloaded; otherwise why not (the caller logs it)."""
    try:
        response = requests.post(
            webserver_url.rstrip("/") + "/graphql",
            json={"query": RELOAD, "variables": {"name": LOCATION_NAME}},
            timeout=timeout_s,
        )
        response.raise_for_status()
        answer = response.json()["data"]["reloadRepositoryLocation"]
    except (requests.RequestException, KeyError, TypeError, ValueError) as error:
        return f"{type(error).__name__}: {error}"
    if answer["__typename"] != "WorkspaceLocationEntry":
        return str(answer.get("message") or answer["__typename"])
    return None
