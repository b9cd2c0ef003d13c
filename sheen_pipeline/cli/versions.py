"""Commands about a project's versions: the tree of versions, and what a change changed."""

from __future__ import annotations

import json

import click

from sheen_pipeline.cli.app import load_settings, main
from sheen_pipeline.terminal import echo, printable


@main.command()
@click.argument("project_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per version.")
def versions(project_id: str, as_json: bool) -> None:
    """The builds of PROJECT_ID as a tree of versions: each under the build it changed, with
    when, status, cost, files changed and preview URL; `*` marks the one in production."""
    from sheen_pipeline.store.deployments import DeploymentStore
    from sheen_pipeline.store.files import BuildFiles
    from sheen_pipeline.store.versions import VersionStore
    from sheen_pipeline.versions.listing import project_versions

    settings = load_settings()
    url = settings.database_url
    found = project_versions(
        project_id,
        VersionStore(url),
        BuildFiles.open(url, settings.artifact_store),
        DeploymentStore(url),
    )
    if not found:
        raise click.ClickException(f"project {project_id} has no builds")
    for version in found:
        if as_json:
            echo(json.dumps(version.as_json()))
            continue
        cost = "-" if version.cost_usd is None else f"${version.cost_usd:.6f}"
        count = version.files_changed
        changed = "new" if count is None else f"{count} file{'' if count == 1 else 's'}"
        echo(
            f"{'*' if version.in_production else ' '} {'  ' * version.depth}{version.build_id}  "
            f"{version.created_at:%Y-%m-%d %H:%M}  {version.status:<9} {cost:>11}  "
            f"{changed:<9} {version.preview_url or '-'}  {printable(version.prompt[:50])!r}"
        )


@main.command()
@click.argument("build_id")
@click.option("--stat", is_flag=True, help="Only the files and line counts.")
def diff(build_id: str, stat: bool) -> None:
    """What BUILD_ID changed against its base, as a unified diff."""
    from sheen_pipeline.store.builds import BuildStore, UnknownBuild
    from sheen_pipeline.store.files import BuildFiles
    from sheen_pipeline.versions.diff import diff_of_build

    settings = load_settings()
    try:
        base_id = BuildStore(settings.database_url).get_build(build_id).request.base_build_id
    except UnknownBuild:
        raise click.ClickException(f"no build {build_id}") from None
    if base_id is None:
        raise click.ClickException(f"build {build_id} was built from scratch: it has no base")
    changes = diff_of_build(
        build_id, base_id, BuildFiles.open(settings.database_url, settings.artifact_store)
    )
    echo(
        f"build {build_id} against {base_id}: {len(changes.added)} added, "
        f"{len(changes.changed)} changed, {len(changes.removed)} removed, "
        f"{len(changes.unchanged)} unchanged; +{changes.lines_added} -{changes.lines_removed}",
        err=not stat,
    )
    if not stat and changes.text:
        echo(changes.text.removesuffix("\n"))
