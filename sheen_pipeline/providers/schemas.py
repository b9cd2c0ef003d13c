"""What models are asked to return. The JSON schemas sent to the APIs come from these models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from sheen_pipeline.models import AcceptanceStep, Task, TaskInput, TaskType


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskSpec(_Wire):
    id: str
    type: TaskType
    name: str
    description: str
    priority: int
    estimated_duration_s: int
    target_path: str
    prompt: str
    dependencies: list[str]

    def to_task(self) -> Task:
        return Task(
            id=self.id,
            type=self.type,
            name=self.name,
            description=self.description,
            priority=self.priority,
            estimated_duration_s=self.estimated_duration_s,
            input=TaskInput(
                prompt=self.prompt,
                target_path=self.target_path,
                dependencies=tuple(self.dependencies),
            ),
        )

    @classmethod
    def from_task(cls, task: Task) -> TaskSpec:
        return cls(
            id=task.id,
            type=task.type,
            name=task.name,
            description=task.description,
            priority=task.priority,
            estimated_duration_s=task.estimated_duration_s,
            target_path=task.input.target_path,
            prompt=task.input.prompt,
            dependencies=list(task.input.dependencies),
        )


class PlanSpec(_Wire):
    summary: str
    tasks: list[TaskSpec]
    acceptance: list[AcceptanceStep] = []  # how a person would check the site does what was asked


class FileSpec(_Wire):
    path: str
    content: str


class EditSpec(_Wire):
    """Replace the one place `search` occurs in the file at `path` with `replace`."""

    path: str
    search: str
    replace: str


class FilesSpec(_Wire):
    files: list[FileSpec]
    edits: list[EditSpec] = []  # modify_file: edits of a file it was given, not the whole file


class DependencySpec(_Wire):
    id: str
    dependencies: list[str]


class DependenciesSpec(_Wire):
    tasks: list[DependencySpec]


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()
