"""Changes over HTTP: POST /api/builds with a base, a project's versions and a build's diff."""

from __future__ import annotations

from dagster import DagsterInstance

from tests.api.conftest import Api
from tests.support.builds import build

GREEN = "make the header dark green"


def test_a_change_is_accepted_with_its_base_resolved_and_refused_when_it_cannot_be(
    api: Api, instance: DagsterInstance
) -> None:
    base, _ = build(instance, project_id="coffee")
    response = api.post({"prompt": GREEN, "project_id": "coffee", "base": "latest"})
    assert response.status_code == 202, response.text
    (queued,) = api.requests.recent(10)
    assert queued.base_build_id == base.build_id  # resolved when accepted, and recorded
    for payload, problem in [
        ({"base": "bnosuch"}, "base: there is no build 'bnosuch'"),
        ({"base": "production"}, "project 'coffee' has no build in production"),
        ({"base": "latest", "project_id": "tea"}, "project 'tea' has no succeeded build"),
        ({"base": "../x"}, "base: may contain only letters"),
    ]:
        refused = api.post({"prompt": GREEN, "project_id": "coffee", **payload})
        assert refused.status_code == 422, refused.text
        assert problem in refused.json()["error"]
    assert api.queued() == 1


def test_versions_and_diff_are_read_with_the_right_credentials(
    api: Api, instance: DagsterInstance
) -> None:
    base, _ = build(instance, project_id="coffee")
    change, _ = build(instance, prompt=GREEN, project_id="coffee", base_build_id="latest")
    assert change.status == "succeeded", change.error

    versions = api.get("/api/projects/coffee/versions", timeout=10)
    assert versions.status_code == 200, versions.text
    listed = versions.json()["versions"]
    assert [(v["build_id"], v["base_build_id"]) for v in listed] == [
        (base.build_id, None),
        (change.build_id, base.build_id),
    ]
    assert [v["files_changed"] for v in listed] == [None, 1]
    assert listed[1]["preview_url"] == change.preview_url and not listed[1]["in_production"]
    assert api.get("/api/projects/coffee/versions", token=None).status_code == 401
    assert api.get("/api/projects/nothing/versions", timeout=10).status_code == 404

    diff = api.get(f"/api/builds/{change.build_id}/diff", timeout=10)
    assert diff.status_code == 200, diff.text
    body = diff.json()
    assert (body["base_build_id"], body["changed"], body["files_unchanged"]) == (
        base.build_id,
        ["styles.css"],
        3,
    )
    assert body["diff"].startswith("--- a/styles.css\n+++ b/styles.css\n")
    assert api.get(f"/api/builds/{change.build_id}/diff", token="wrong").status_code == 401
    assert api.get(f"/api/builds/{base.build_id}/diff", timeout=10).status_code == 404
