"""Dagster step outputs in the artifact store, by run, step and output name, so a step on any
machine reads what steps on others produced, and a re-execution from failure on any machine
reads the outputs its parent run left."""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert, select

from sheen_pipeline.store.blobs import BlobStore, MissingBlob
from sheen_pipeline.store.tables import step_outputs


class StepOutputs:
    def __init__(self, engine: Engine, blobs: BlobStore) -> None:
        self.engine = engine
        self.blobs = blobs

    def put(self, key: str, data: bytes) -> None:
        digest = self.blobs.put(data)
        with self.engine.begin() as conn:  # a retried step writes its output again
            conn.execute(delete(step_outputs).where(step_outputs.c.output_key == key))
            conn.execute(insert(step_outputs).values(output_key=key, sha256=digest))

    def get(self, key: str) -> bytes:
        query = select(step_outputs.c.sha256).where(step_outputs.c.output_key == key)
        with self.engine.connect() as conn:
            digest = conn.execute(query).scalar()
        if digest is None:
            raise MissingBlob(f"no stored step output {key}")
        return self.blobs.get(digest)
