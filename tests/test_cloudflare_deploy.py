"""Deploying to Cloudflare (Workers static assets) through the official SDK, unmocked, against a
local server that speaks the API's wire format; and promotion on both targets."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from dagster import AssetKey, DagsterInstance

from sheen_pipeline.api.app import create_app
from sheen_pipeline.config import Settings
from sheen_pipeline.deploy.cloudflare import CloudflareTarget, script_name
from sheen_pipeline.deploy.target import DeployError, asset_hash
from sheen_pipeline.events.types import EventType
from sheen_pipeline.promotion import promote
from sheen_pipeline.service import BuildService
from tests.support.builds import build
from tests.support.fake_cloudflare import ACCOUNT, TOKEN, FakeCloudflare, fake_cloudflare
from tests.support.processes import instance_of, sheen, sheen_cli_env, sheen_here
from tests.support.server import serving
from tests.support.waiting import wait_for

PREVIEW = re.compile(r"https://[0-9a-f]{8}-sheen-default-[0-9a-f]{6}\.sheen-test\.workers\.dev/")


@pytest.fixture
def cloudflare(sheen_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCloudflare]:
    with fake_cloudflare() as (fake, base_url):
        monkeypatch.setenv("SHEEN_DEPLOY_TARGET", "cloudflare")
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
        monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", ACCOUNT)
        monkeypatch.setenv("SHEEN_CLOUDFLARE_BASE_URL", base_url)
        yield fake


def target() -> CloudflareTarget:
    deploy = Settings.from_env().deploy
    return CloudflareTarget(deploy.cloudflare_api_token, ACCOUNT, deploy.cloudflare_base_url)


def site(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("__", "/")).parent.mkdir(parents=True, exist_ok=True)
        (folder / name.replace("__", "/")).write_text(text)
    return folder


def test_the_hash_is_the_documented_one() -> None:
    """SHA-256 of the base64 content followed by the extension, first 32 hex digits."""
    expected = hashlib.sha256(b"aGVsbG8=html").hexdigest()[:32]
    assert asset_hash("/index.html", b"hello") == expected
    assert asset_hash("/a.txt", b"x") != asset_hash("/a.html", b"x")


def test_a_build_deploys_to_its_own_preview_and_production_stays_as_it_was(
    cloudflare: FakeCloudflare, instance: DagsterInstance
) -> None:
    service = BuildService.from_env()
    outcome, lines = build(instance, service)
    assert outcome.status == "succeeded", outcome.error
    assert PREVIEW.fullmatch(outcome.preview_url or "")
    worker = cloudflare.scripts[script_name("default")]
    assert worker.enabled and worker.previews_enabled  # made on the first deploy
    assert len(worker.versions) == 2  # the placeholder, and this build's version
    assert cloudflare.live_manifest(script_name("default")) == worker.versions[0].manifest
    assert b"No build of this project is in production" in cloudflare.live_content(
        script_name("default"), "/index.html"
    )
    (completed,) = [
        e for e in service.events.after(outcome.build_id) if e.type == EventType.DEPLOY_COMPLETED
    ]
    assert completed.data["target"] == "cloudflare"
    assert completed.data["uploaded_files"] == len(outcome.files)
    assert completed.data["version_id"] == worker.versions[1].id
    assert any(line.startswith("deployed to cloudflare:") for line in lines)
    preview = instance.get_latest_materialization_event(AssetKey(["sheen", "default", "preview"]))
    assert preview is not None and preview.asset_materialization is not None
    metadata = preview.asset_materialization.metadata
    assert metadata["uploaded_files"].value == len(outcome.files)
    assert metadata["target"].value == "cloudflare"


def test_a_rebuild_that_changed_one_file_uploads_one_file(
    cloudflare: FakeCloudflare, tmp_path: Path
) -> None:
    files = {"index.html": "<h1>one</h1>", "styles.css": "h1{}", "js__app.js": "1"}
    first = target().deploy("default", "b1", site(tmp_path / "one", **files))
    assert (first.uploaded_files, first.reused_files) == (3, 0)
    before = len(cloudflare.uploaded)
    changed = site(tmp_path / "two", **{**files, "styles.css": "h1{color:red}"})
    second = target().deploy("default", "b2", changed)
    assert (second.uploaded_files, second.reused_files) == (1, 2)
    assert (second.uploaded_bytes, second.reused_bytes) == (13, 13)
    assert len(cloudflare.uploaded) == before + 1
    assert first.url != second.url  # a preview URL per build


def settings_calls(cloudflare: FakeCloudflare, method: str) -> list[str]:
    """The calls of the Worker's workers.dev settings, by method."""
    return [
        p
        for m, p, _ in cloudflare.requests
        if m == method and re.search(r"/scripts/.+/subdomain$", p)
    ]


def test_a_worker_left_half_made_is_repaired_by_the_next_deploy(
    cloudflare: FakeCloudflare, tmp_path: Path
) -> None:
    """The first deploy made the Worker, then failed to put it on workers.dev (every attempt of
    the settings call answered 500); the next deploy reads the settings and sets them."""
    cloudflare.faults["POST /subdomain"] = [500] * 5  # the first attempt and the SDK's retries
    with pytest.raises(DeployError, match="HTTP 500"):
        target().deploy("default", "b1", site(tmp_path / "one", **{"index.html": "one"}))
    worker = cloudflare.scripts[script_name("default")]
    assert (worker.enabled, worker.previews_enabled) == (False, False)  # left half-made
    target().deploy("default", "b2", site(tmp_path / "two", **{"index.html": "two"}))
    assert (worker.enabled, worker.previews_enabled) == (True, True)
    settings_set = len(settings_calls(cloudflare, "POST"))
    target().deploy("default", "b3", site(tmp_path / "three", **{"index.html": "three"}))
    assert len(settings_calls(cloudflare, "POST")) == settings_set  # converged: only read
    assert len(settings_calls(cloudflare, "GET")) == 3


def test_empty_files_and_duplicate_contents_deploy_and_are_counted_once(
    cloudflare: FakeCloudflare, tmp_path: Path
) -> None:
    files = {"index.html": "<h1>hi</h1>", "empty.css": "", "a.txt": "same", "b.txt": "same"}
    files |= {"c.txt": "same", "d.txt": ""}
    cf = target()
    deployed = cf.deploy("default", "b1", site(tmp_path / "s", **files))
    assert (deployed.uploaded_files, deployed.reused_files) == (4, 0)  # same content: one asset
    assert (deployed.uploaded_bytes, deployed.reused_bytes) == (11 + 0 + 4, 0)
    assert len(deployed.files) == 6  # every path is served
    cf.promote("default", deployed)
    worker = script_name("default")
    assert cloudflare.live_content(worker, "/empty.css") == b""
    assert cloudflare.live_content(worker, "/c.txt") == b"same"


def test_each_asset_is_a_file_part_typed_by_its_extension(
    cloudflare: FakeCloudflare, tmp_path: Path
) -> None:
    files = {"index.html": "<p>", "styles.css": "p{}", "js__app.js": "1;", "logo.svg": "<svg/>"}
    target().deploy("default", "b1", site(tmp_path / "s", **files))
    worker = cloudflare.scripts[script_name("default")]
    served = {path: worker.types[digest] for path, digest in worker.versions[-1].manifest.items()}
    assert served == {
        "/index.html": "text/html",
        "/styles.css": "text/css",
        "/js/app.js": "text/javascript",
        "/logo.svg": "image/svg+xml",
    }


def test_what_a_deploy_costs_in_requests(cloudflare: FakeCloudflare, tmp_path: Path) -> None:
    """As docs/deployment.md says: 4, plus a bucket of missing files each (2 files a bucket
    here); a project's first deploy adds 4 (the placeholder Worker and its workers.dev
    setting)."""
    files = site(tmp_path / "s", **{"index.html": "<p>", "a.css": "p{}", "b.js": "1"})
    target().deploy("default", "b1", files)
    first = len(cloudflare.requests)
    target().deploy("default", "b2", files)
    assert len(cloudflare.requests) - first == 4  # nothing changed: no bucket
    assert first == 4 + 2 + 4


def test_promotion_and_rollback(cloudflare: FakeCloudflare, tmp_path: Path) -> None:
    cf = target()
    old = cf.deploy("default", "b1", site(tmp_path / "one", **{"index.html": "old"}))
    new = cf.deploy("default", "b2", site(tmp_path / "two", **{"index.html": "new"}))
    worker = script_name("default")
    url = cf.promote("default", new)
    assert url == f"https://{worker}.sheen-test.workers.dev/"
    assert cloudflare.live_content(worker, "/index.html") == b"new"
    cf.promote("default", old)  # the rollback
    assert cloudflare.live_content(worker, "/index.html") == b"old"


def test_two_promotions_at_once_take_turns_so_the_record_is_what_is_live(
    cloudflare: FakeCloudflare, instance: DagsterInstance
) -> None:
    """Promotion x is held by Cloudflare between its switch and its answer; promotion y, started
    meanwhile, waits for x to be recorded instead of switching inside that window (the held
    answer is released when y's switch arrives, or after 3 s when it rightly does not)."""
    service = BuildService.from_env()
    x, _ = build(instance, service)
    y, _ = build(instance, service, prompt="a site for a florist")
    versions = {b.build_id: service.deployments.get(b.build_id) for b in (x, y)}
    x_held, y_switched = threading.Event(), threading.Event()

    def hold_x(version_id: str) -> None:
        if version_id == versions[x.build_id].version_id:  # type: ignore[union-attr]
            x_held.set()
            with contextlib.suppress(AssertionError):
                wait_for(y_switched.is_set, 3, "promotion y to switch Cloudflare")
        else:
            y_switched.set()

    cloudflare.on_deploy = hold_x
    promotions = [
        threading.Thread(target=promote, args=(service, b.build_id, "ann", True)) for b in (x, y)
    ]
    promotions[0].start()
    wait_for(x_held.is_set, 30, "promotion x to switch Cloudflare")
    promotions[1].start()
    for thread in promotions:
        thread.join(timeout=60)
    record = service.deployments.production("default")
    assert record is not None and record.build_id == y.build_id  # y went second
    live = cloudflare.scripts[script_name("default")].live
    assert live == versions[y.build_id].version_id  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("setup", "status"),
    [("wrong token", 401), ("read-only token", 403)],
)
def test_a_refused_token_fails_at_once_naming_the_permission_and_never_the_token(
    cloudflare: FakeCloudflare,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    setup: str,
    status: int,
) -> None:
    secret = "cf-not-the-right-token-987654321"
    if setup == "wrong token":
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", secret)
    else:
        cloudflare.read_only = True
        secret = TOKEN
    with pytest.raises(DeployError) as refused:
        target().deploy("default", "b1", site(tmp_path / "s", **{"index.html": "x"}))
    message = str(refused.value)
    assert f"HTTP {status}" in message and "Workers Scripts > Edit" in message
    assert secret not in message
    sent = [(method, path) for method, path, _ in cloudflare.requests]
    assert len(sent) == len(set(sent))  # the refusal was not retried


def test_a_5xx_mid_upload_is_retried(cloudflare: FakeCloudflare, tmp_path: Path) -> None:
    files = {f"p{n}.html": f"page {n}" for n in range(5)}
    cloudflare.faults["/workers/assets/upload"] = [503, 429]
    deployed = target().deploy("default", "b1", site(tmp_path / "s", **files))
    assert deployed.uploaded_files == 5
    uploads = [r for r in cloudflare.requests if r[1].endswith("/workers/assets/upload")]
    buckets_of_placeholder_and_site = 1 + 3
    assert len(uploads) == buckets_of_placeholder_and_site + 2  # two answered 503 and 429


def test_a_failed_deploy_leaves_production_untouched(
    cloudflare: FakeCloudflare, tmp_path: Path
) -> None:
    cf = target()
    live = cf.deploy("default", "b1", site(tmp_path / "one", **{"index.html": "live"}))
    cf.promote("default", live)
    cloudflare.faults["/versions"] = [500] * 10  # more than the SDK's retries
    with pytest.raises(DeployError, match="HTTP 500"):
        cf.deploy("default", "b2", site(tmp_path / "two", **{"index.html": "broken"}))
    assert cloudflare.live_content(script_name("default"), "/index.html") == b"live"


def test_cloudflare_end_to_end_from_the_cli(cloudflare: FakeCloudflare, tmp_path: Path) -> None:
    settings = Settings.from_env()
    env = sheen_cli_env(
        tmp_path,
        SHEEN_HOME=str(settings.home),
        SHEEN_DEPLOY_TARGET="cloudflare",
        CLOUDFLARE_API_TOKEN=TOKEN,
        CLOUDFLARE_ACCOUNT_ID=ACCOUNT,
        SHEEN_CLOUDFLARE_BASE_URL=settings.deploy.cloudflare_base_url,
    )
    first = json.loads(
        sheen_here(env, "build", "a site for a bakery", "--json").stdout.splitlines()[-1]
    )
    second = json.loads(
        sheen_here(env, "build", "a site for a florist", "--json").stdout.splitlines()[-1]
    )
    assert PREVIEW.fullmatch(first["preview_url"]) and PREVIEW.fullmatch(second["preview_url"])
    worker = script_name("default")
    for build_id, word in ((second["build_id"], b"florist"), (first["build_id"], b"bakery")):
        promoted = sheen_here(env, "promote", build_id, "--by", "ann", "--force")  # checks are off
        assert promoted.returncode == 0, promoted.stderr
        assert f"https://{worker}.sheen-test.workers.dev/" in promoted.stdout
        assert word in cloudflare.live_content(worker, "/index.html").lower()
    with instance_of(env) as instance:
        event = instance.get_latest_materialization_event(
            AssetKey(["sheen", "default", "production"])
        )
        assert event is not None and event.asset_materialization is not None
        recorded = event.asset_materialization.metadata
        assert recorded["build_id"].value == first["build_id"]  # the rollback is what is live
        assert recorded["promoted_by"].value == "ann"
    cloudflare.read_only = True
    refused = sheen(env, "promote", second["build_id"], "--force")  # a process: its real stderr
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        "Error: Cloudflare refused the promotion (HTTP 403): CLOUDFLARE_API_TOKEN needs the "
        f"permission Account > Workers Scripts > Edit on account {ACCOUNT}"
    ]


def test_local_promotion_and_rollback_at_prod(
    sheen_home: Path, instance: DagsterInstance, tmp_path: Path
) -> None:
    env = sheen_cli_env(tmp_path, SHEEN_HOME=str(sheen_home))
    first = json.loads(
        sheen_here(env, "build", "a site for a bakery", "--json").stdout.splitlines()[-1]
    )
    second = json.loads(
        sheen_here(env, "build", "a site for a florist", "--json").stdout.splitlines()[-1]
    )
    failed = sheen_here(env, "promote", "bnothere")
    assert failed.returncode == 1 and "no build bnothere" in failed.stderr
    unchecked = sheen(env, "promote", second["build_id"])  # the tests turn the checks off
    assert unchecked.returncode == 1
    assert unchecked.stderr.splitlines() == [  # one line, no stack trace
        f"Error: build {second['build_id']} is not promoted: its browser checks did not run "
        "(SHEEN_PREVIEW_CHECKS=off); check it, or promote it with --force (force in the "
        "Launchpad) to put it in production unchecked"
    ]
    with serving(create_app(Settings.from_env(env))) as base:
        assert requests.get(f"{base}/prod/default/", timeout=10).status_code == 404
        for build_id, word in ((second["build_id"], "florist"), (first["build_id"], "bakery")):
            promoted = sheen_here(env, "promote", build_id, "--force")
            assert promoted.returncode == 0, promoted.stderr
            assert "/prod/default/" in promoted.stdout
            page = requests.get(f"{base}/prod/default/", timeout=10)
            assert page.status_code == 200 and word in page.text.lower()
