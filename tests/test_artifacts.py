"""The shared artifact store: content by sha256 in the app database or S3 (moto's server on
loopback), each build's files by stage, and local folders that are only a cache of them."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert
from starlette.testclient import TestClient

from sheen_pipeline.api.app import create_app
from sheen_pipeline.config import ConfigError, Settings
from sheen_pipeline.models import TokenUsage, UnsafePath
from sheen_pipeline.store.blobs import ArtifactStoreError, BlobStore, MissingBlob, open_blobs
from sheen_pipeline.store.engines import engine_for
from sheen_pipeline.store.files import BuildFiles, Stage
from sheen_pipeline.store.ledger import Entry, Ledger
from sheen_pipeline.store.tables import build_files
from tests.support.builds import build, deployed_page
from tests.support.services import s3_bucket


@pytest.fixture(params=["database", "s3"])
def blobs(
    request: pytest.FixtureRequest, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BlobStore]:
    if request.param == "database":
        yield open_blobs("database", engine_for(database_url))
        return
    with s3_bucket() as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield open_blobs(env["SHEEN_ARTIFACT_STORE"], engine_for(database_url))


def test_content_is_stored_once_by_its_sha256(blobs: BlobStore) -> None:
    digest = blobs.put(b"<h1>hello</h1>")
    assert blobs.put(b"<h1>hello</h1>") == digest  # idempotent: concurrent writers agree
    assert blobs.get(digest) == b"<h1>hello</h1>"
    with pytest.raises(MissingBlob):
        blobs.get("0" * 64)
    blobs.check_reachable()


def test_a_folder_is_a_cache_of_the_stage(
    blobs: BlobStore, database_url: str, tmp_path: Path
) -> None:
    files = BuildFiles(engine_for(database_url), blobs)
    files.save("b1", Stage.SOURCE, {"index.html": b"v1", "css/site.css": b"body{}"})
    files.save("b1", Stage.SOURCE, {"index.html": b"v2"})  # a later task rewrites a path
    folder = tmp_path / "workspace"
    (folder / "node_modules" / "x").mkdir(parents=True)
    (folder / "node_modules" / "x" / "index.js").write_text("kept: a build tool's cache")
    (folder / "stale.html").write_text("left by an earlier build on this machine")

    files.materialize("b1", Stage.SOURCE, folder)
    assert (folder / "index.html").read_bytes() == b"v2"
    assert (folder / "css" / "site.css").read_bytes() == b"body{}"
    assert (folder / "stale.html").exists()  # without prune, other steps' files are left alone

    files.materialize("b1", Stage.SOURCE, folder, prune=frozenset({"node_modules"}))
    assert not (folder / "stale.html").exists()
    assert (folder / "node_modules" / "x" / "index.js").exists()
    assert [a.path for a in files.stage_files("b1", Stage.SOURCE)] == [
        "css/site.css",
        "index.html",
    ]


def test_replacing_a_stage_drops_what_the_folder_no_longer_has(
    blobs: BlobStore, database_url: str, tmp_path: Path
) -> None:
    files = BuildFiles(engine_for(database_url), blobs)
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "old.js").write_text("1")
    files.replace("b2", Stage.DIST, dist)
    (dist / "old.js").unlink()
    (dist / "index.html").write_text("new")
    assert [a.path for a in files.replace("b2", Stage.DIST, dist)] == ["index.html"]
    assert [a.path for a in files.stage_files("b2", Stage.DIST)] == ["index.html"]


def test_a_manifest_path_that_would_leave_the_folder_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    engine = engine_for(database_url)
    files = BuildFiles(engine, open_blobs("database", engine))
    digest = files.blobs.put(b"x")
    with engine.begin() as conn:
        conn.execute(
            insert(build_files).values(
                build_id="b3", stage="source", path="../escape", sha256=digest, size=1
            )
        )
    with pytest.raises(UnsafePath):
        files.materialize("b3", Stage.SOURCE, tmp_path / "ws")
    assert not (tmp_path / "escape").exists()


def test_a_build_on_s3_is_served_after_its_local_folders_are_gone(
    instance: object, sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with s3_bucket() as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        outcome, _ = build(instance)  # type: ignore[arg-type]
        assert outcome.status == "succeeded", outcome.error
        build_id = str(outcome.build_id)
        for cache in ("workspaces", "dist"):
            for path in sorted((sheen_home / cache).rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
        with TestClient(create_app(Settings.from_env())) as client:
            page = client.get(f"/p/{build_id}/")
            assert page.status_code == 200 and "<h1>Blue Fern Coffee</h1>" in page.text
            assert page.headers["content-type"].startswith("text/html")
            assert (
                client.get(f"/p/{build_id}/styles.css")
                .headers["content-type"]
                .startswith("text/css")
            )
            assert client.get(f"/p/{build_id}", follow_redirects=False).status_code == 307
            assert client.get(f"/p/{build_id}/missing.html").status_code == 404
            assert client.get("/p/bnotdeployed/").status_code == 404
        assert "<h1>Blue Fern Coffee</h1>" in deployed_page(build_id)
    with TestClient(create_app(Settings.from_env())) as client:  # S3 is away now
        away = client.get(f"/p/{build_id}/")
    assert away.status_code == 503 and away.headers["retry-after"] == "10"
    assert away.text == "the artifact store is unavailable; try again shortly"


def test_an_unreachable_artifact_store_fails_health_without_leaking(
    sheen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with s3_bucket() as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-that-must-not-leak")
        monkeypatch.setenv("SHEEN_ARTIFACT_STORE", "s3://no-such-bucket/x")
        with TestClient(create_app(Settings.from_env())) as client:
            answer = client.get("/healthz")
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["database"]["ok"] and not checks["artifact_store"]["ok"]
    assert "no-such-bucket" in checks["artifact_store"]["detail"]
    assert "secret-that-must-not-leak" not in answer.text and "127.0.0.1" not in answer.text


def test_a_missing_bucket_is_an_artifact_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with s3_bucket() as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        store = open_blobs("s3://no-such-bucket", engine_for("sqlite://"))
        with pytest.raises(ArtifactStoreError, match="no-such-bucket"):
            store.put(b"x")


def test_preparing_a_store_makes_a_missing_bucket_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """`sheen init` makes the bucket, so a new deployment needs no S3 tool; the app database
    needs nothing made."""
    with s3_bucket() as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        store = open_blobs("s3://new-bucket/prod", engine_for("sqlite://"))
        with pytest.raises(ArtifactStoreError):
            store.put(b"x")
        assert store.prepare() == "s3://new-bucket (created)"
        assert store.prepare() == "s3://new-bucket (exists)"
        assert store.get(store.put(b"x")) == b"x"
    assert open_blobs("database", engine_for("sqlite://")).prepare() == "the app database"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SHEEN_ARTIFACT_STORE", "ftp://x"),
        ("SHEEN_ARTIFACT_STORE", "s3://"),
        ("SHEEN_EXECUTOR", "k8s"),
    ],
)
def test_bad_store_and_executor_settings_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_healthz_and_metrics_after_a_build(
    instance: object, sheen_home: Path, database_url: str
) -> None:
    """On either database (Postgres sums come back as Decimals), priced calls included."""
    outcome, _ = build(instance)  # type: ignore[arg-type]
    assert outcome.status == "succeeded"
    ledger = Ledger(Settings.from_env().database_url)
    for outcome_name, calls in (("ok", 3), ("error", 1), ("rejected", 2)):
        usage = TokenUsage(
            input_tokens=100, output_tokens=50, cost_usd=Decimal("0.25"), calls=calls
        )
        ledger.record(Entry("b1", "p", "u", "anthropic", "m", "task", outcome_name, usage))
    with TestClient(create_app(Settings.from_env())) as client:
        health = client.get("/healthz")
        metrics = client.get("/metrics")
    assert health.status_code == 200 and set(health.json()["checks"]) == {
        "database",
        "artifact_store",
    }
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "sheen_webhook_queue_depth 0.0" in metrics.text
    assert "process_resident_memory_bytes" in metrics.text
    assert 'sheen_builds{status="succeeded"} 1.0' in metrics.text
    assert "sheen_task_duration_seconds_count 5.0" in metrics.text
    assert "sheen_build_duration_seconds_count 1.0" in metrics.text
    labels = 'model="m",provider="anthropic"'
    assert 'sheen_provider_calls_total{model="m",outcome="ok",provider="anthropic"} 3.0' in (
        metrics.text
    )
    assert f"sheen_provider_errors_total{{{labels}}} 3.0" in metrics.text  # error and rejected
    assert f'sheen_tokens_total{{kind="input",{labels}}} 300.0' in metrics.text
    assert f"sheen_cost_usd_total{{{labels}}} 0.75" in metrics.text
