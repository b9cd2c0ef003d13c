"""The machine's message broker and an S3-compatible object store for tests. The broker tests run
when SHEEN_TEST_BROKER_URL is set (.ci/run sets it) and fail if RabbitMQ is down; otherwise they
are skipped. The object store is moto's S3 server on loopback, started in the test's process."""

from __future__ import annotations

import logging
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.support.waiting import free_port

BROKER_ENV = "SHEEN_TEST_BROKER_URL"


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """The broker URL of a new, empty RabbitMQ virtual host (deleted afterwards), so a test's
    queues never meet another test's or a developer's."""
    base = os.environ.get(BROKER_ENV)
    if not base:
        pytest.skip(f"{BROKER_ENV} is not set")
    vhost = f"sheen-test-{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"{base.rstrip('/')}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server on loopback; yields its endpoint URL."""
    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@contextmanager
def s3_bucket() -> Iterator[dict[str, str]]:
    """moto's S3 server with one bucket; yields the environment that points boto3 (and so
    SHEEN_ARTIFACT_STORE) at it."""
    with moto_server() as endpoint:
        bucket = f"sheen-{uuid.uuid4().hex[:8]}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=bucket)
        yield {
            **S3_CREDENTIALS,
            "AWS_ENDPOINT_URL": endpoint,
            "SHEEN_ARTIFACT_STORE": f"s3://{bucket}/artifacts",
        }
