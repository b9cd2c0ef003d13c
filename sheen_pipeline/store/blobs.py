"""Content-addressed blob stores every process can reach: file contents and step outputs kept by
their sha256, in the app database (fine for small sites) or an S3-compatible object store
(SHEEN_ARTIFACT_STORE=s3://bucket/prefix). A local folder is only ever a cache of them."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine, insert, select, text
from sqlalchemy.exc import IntegrityError

from sheen_pipeline.store.tables import blobs

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client  # pragma: no cover


class MissingBlob(LookupError):
    """The store has no content with that sha256 (it was never written, or was deleted)."""


class ArtifactStoreError(RuntimeError):
    """The artifact store cannot be reached or refused a request; the message says which, and
    `code` is the store's own error code when it gave one."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class BlobStore(Protocol):
    """Where content lives, by its sha256; put is idempotent, so writers never race."""

    name: str

    def put(self, data: bytes) -> str: ...

    def get(self, sha256: str) -> bytes: ...

    def check_reachable(self) -> None:
        """Raise ArtifactStoreError when the store cannot be used (for /healthz)."""

    def prepare(self) -> str:
        """Make the store ready for a new deployment (`sheen init`); says what it found or did."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DatabaseBlobs:
    name = "database"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, data: bytes) -> str:
        digest = sha256_of(data)
        with self.engine.connect() as conn:
            if conn.execute(select(blobs.c.size).where(blobs.c.sha256 == digest)).first():
                return digest
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(blobs).values(sha256=digest, size=len(data), data=data))
        except IntegrityError:
            pass  # another writer stored the same content first
        return digest

    def get(self, sha256: str) -> bytes:
        with self.engine.connect() as conn:
            data = conn.execute(select(blobs.c.data).where(blobs.c.sha256 == sha256)).scalar()
        if data is None:
            raise MissingBlob(f"no stored content with sha256 {sha256}")
        return bytes(data)

    def check_reachable(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as error:
            raise ArtifactStoreError(
                f"the database is not reachable: {type(error).__name__}"
            ) from None

    def prepare(self) -> str:
        self.check_reachable()
        return "the app database"


class S3Blobs:
    """Objects under s3://bucket/prefix/<sha256[:2]>/<sha256>. Endpoint and credentials come
    from the standard AWS settings (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...), as in boto3."""

    name = "s3"

    def __init__(self, bucket: str, prefix: str) -> None:
        import boto3  # here: it costs every process a third of a second to import
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix.strip("/")
        config = Config(retries={"max_attempts": 5, "mode": "standard"})
        self.client: S3Client = boto3.client("s3", config=config)

    def _key(self, sha256: str) -> str:
        name = f"{sha256[:2]}/{sha256}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def _call(self, what: str, call: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call(Bucket=self.bucket, **kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "?")
            if what == "get_object" and code in {"NoSuchKey", "404"}:
                raise MissingBlob(f"no stored content at {kwargs.get('Key')}") from None
            raise ArtifactStoreError(
                f"S3 refused {what} in bucket {self.bucket}: {code}", code
            ) from None
        except BotoCoreError as error:
            raise ArtifactStoreError(f"S3 {what} failed: {type(error).__name__}") from None

    def put(self, data: bytes) -> str:
        digest = sha256_of(data)
        self._call("put_object", self.client.put_object, Key=self._key(digest), Body=data)
        return digest

    def get(self, sha256: str) -> bytes:
        answer = self._call("get_object", self.client.get_object, Key=self._key(sha256))
        data: bytes = answer["Body"].read()
        return data

    def check_reachable(self) -> None:
        self._call("head_bucket", self.client.head_bucket)

    def prepare(self) -> str:
        """Create the bucket when it is missing, so setting up needs no S3 tool of its own."""
        try:
            self.check_reachable()
            return f"s3://{self.bucket} (exists)"
        except ArtifactStoreError as error:
            if error.code not in {"404", "NoSuchBucket"}:
                raise
        region = self.client.meta.region_name
        if region and region != "us-east-1":  # S3 refuses a LocationConstraint of us-east-1
            self._call(
                "create_bucket",
                self.client.create_bucket,
                CreateBucketConfiguration={"LocationConstraint": region},
            )
        else:
            self._call("create_bucket", self.client.create_bucket)
        return f"s3://{self.bucket} (created)"


def open_blobs(artifact_store: str, engine: Engine) -> BlobStore:
    """SHEEN_ARTIFACT_STORE: "database" (the app database) or "s3://bucket[/prefix]"."""
    if artifact_store.startswith("s3://"):
        bucket, _, prefix = artifact_store.removeprefix("s3://").partition("/")
        return S3Blobs(bucket, prefix)
    return DatabaseBlobs(engine)
