"""Deployments of builds and each project's production version, in the app database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, select

from sheen_pipeline.models import Deployed
from sheen_pipeline.store.engines import engine_for
from sheen_pipeline.store.tables import deployments, production


@dataclass(frozen=True)
class Production:
    project_id: str
    build_id: str
    target: str
    url: str
    promoted_by: str
    promoted_at: datetime


class DeploymentStore:
    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)

    def record(self, build_id: str, project_id: str, deployed: Deployed) -> None:
        row = {
            "build_id": build_id,
            "project_id": project_id,
            **deployed.model_dump(exclude={"files"}),
            "created_at": datetime.now(UTC),
        }
        with self.engine.begin() as conn:  # a re-executed deploy replaces the build's record
            conn.execute(delete(deployments).where(deployments.c.build_id == build_id))
            conn.execute(insert(deployments).values(**row))

    def get(self, build_id: str) -> Deployed | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(deployments).where(deployments.c.build_id == build_id)
            ).first()
        if row is None:
            return None
        return Deployed.model_validate(
            {name: getattr(row, name) for name in Deployed.model_fields if name != "files"}
        )

    def projects(self, limit: int) -> list[str]:
        """Projects with a deployment, the most recently deployed first (at most limit)."""
        newest = func.max(deployments.c.created_at)
        query = (
            select(deployments.c.project_id)
            .group_by(deployments.c.project_id)
            .order_by(newest.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def latest(self, project_id: str) -> str | None:
        """The project's most recently deployed build."""
        query = (
            select(deployments.c.build_id)
            .where(deployments.c.project_id == project_id)
            .order_by(deployments.c.created_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def set_production(self, production_row: Production) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(production).where(production.c.project_id == production_row.project_id)
            )
            conn.execute(insert(production).values(**production_row.__dict__))

    def production(self, project_id: str) -> Production | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(production).where(production.c.project_id == project_id)
            ).first()
        if row is None:
            return None
        promoted_at = (
            row.promoted_at if row.promoted_at.tzinfo else row.promoted_at.replace(tzinfo=UTC)
        )
        return Production(
            row.project_id, row.build_id, row.target, row.url, row.promoted_by, promoted_at
        )
