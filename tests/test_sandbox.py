"""Generated build scripts are untrusted code: they run in the bubblewrap sandbox, and every
attempt to get out of it fails safely with a clear message."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sheen_pipeline.build import sandbox as sandbox_module
from sheen_pipeline.build.npm import NpmRegistry, build_npm
from sheen_pipeline.build.sandbox import CommandFailed, Sandbox, SandboxUnavailable
from sheen_pipeline.build.static import BuildError
from sheen_pipeline.config import FileLimits, SandboxSettings
from tests.support.processes import processes_with
from tests.support.receiver import Receiver
from tests.support.waiting import wait_for

PROBE = r"""
const fs = require('fs'), net = require('net'), dns = require('dns');
const out = {uid: process.getuid()};
function attempt(name, action) {
  try { out[name] = String(action()); } catch (error) { out[name] = 'refused: ' + error.code; }
}
attempt('read_app_database', () => fs.readFileSync(process.argv[2], 'utf8'));
attempt('other_workspaces', () => fs.readdirSync(process.argv[3]).join(','));
attempt('write_tmp', () => { fs.writeFileSync(process.argv[4], 'x'); return 'written'; });
attempt('write_system', () => { fs.writeFileSync('/etc/sheen-probe', 'x'); return 'written'; });
attempt('read_shadow', () => fs.readFileSync('/etc/shadow', 'utf8'));
attempt('other_processes', () => fs.readdirSync('/proc').filter(x => /^\d+$/.test(x)).length);
const socket = net.connect(Number(process.argv[5]), '127.0.0.1');
socket.on('error', e => { out.loopback = 'refused: ' + e.code; next(); });
socket.on('connect', () => { out.loopback = 'connected'; socket.end(); next(); });
function next() {
  dns.lookup('registry.npmjs.org', (error, address) => {
    out.internet = error ? 'refused: ' + error.code : address;
    fs.mkdirSync('dist', {recursive: true});
    fs.writeFileSync('dist/index.html', JSON.stringify(out));
  });
}
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "sheen"
    (home / "workspaces" / "bother").mkdir(parents=True)
    (home / "sheen.db").write_text("the prompts of other users")
    return home


def workspace_with(home: Path, build_script: str, **files: str) -> Path:
    workspace = home / "workspaces" / "bmine"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "package.json").write_text(json.dumps({"scripts": {"build": build_script}}))
    for name, content in files.items():
        (workspace / name).write_text(content)
    return workspace


def run_build(
    home: Path, workspace: Path, timeout_s: float = 60, **settings: int
) -> dict[str, str]:
    files, _, _ = build_npm(
        workspace,
        home / "dist" / workspace.name,
        timeout_s,
        FileLimits(),
        Sandbox(SandboxSettings(**settings)),
        NpmRegistry(home / "npm-cache"),
    )
    assert [f.path for f in files] == ["index.html"]
    return dict(json.loads((home / "dist" / workspace.name / "index.html").read_text()))


def test_a_hostile_build_script_reaches_nothing_but_its_workspace(home: Path) -> None:
    private_tmp = Path("/tmp") / f"sheen-probe-{uuid.uuid4().hex}"
    with Receiver() as local_service:
        port = str(local_service.server_address[1])
        args = [str(home / "sheen.db"), str(home / "workspaces"), str(private_tmp), port]
        workspace = workspace_with(home, f"node probe.js {' '.join(args)}", **{"probe.js": PROBE})
        seen = run_build(home, workspace)
    assert local_service.received == []
    if os.geteuid() == 0:
        assert seen["uid"] == 65534  # nobody, not root
    assert seen["read_app_database"] == "refused: ENOENT"  # SHEEN_HOME is not there at all
    assert seen["other_workspaces"] == "refused: ENOENT"  # not even its own source folder
    assert seen["write_system"] == "refused: EROFS"
    assert seen["read_shadow"] == "refused: EACCES"
    assert int(str(seen["other_processes"])) < 10  # its own process tree only
    assert str(seen["loopback"]).startswith("refused")  # no way to the host's services
    assert str(seen["internet"]).startswith("refused")  # no network while building
    assert seen["write_tmp"] == "written" and not private_tmp.exists()  # a private /tmp


def test_a_fork_bomb_is_contained_and_killed_whole(home: Path) -> None:
    marker = f"{uuid.uuid4().int % 10_000}.5"  # a unique sleep length to find them by
    bomb = f"sh -c 'bomb(){{ bomb|bomb& }}; bomb; sleep {marker}'"
    # Held at its process limit, the bomb runs until it is killed at its timeout, or its own
    # shell fails to fork and gives up first; either way it fails, and then nothing of it runs.
    ended = r"`npm run build` (timed out after 5s and was killed|failed with exit code 2)"
    with pytest.raises(CommandFailed, match=ended):
        run_build(home, workspace_with(home, bomb), timeout_s=5, max_processes=64)
    wait_for(lambda: not processes_with(f"sleep {marker}"), 15, "every process of the bomb to end")


def test_a_build_that_exceeds_its_memory_fails_with_a_clear_message(home: Path) -> None:
    hog = 'node -e "const a=[];while(true)a.push(Buffer.alloc(1e8,1))"'
    with pytest.raises(CommandFailed, match=r"`npm run build` failed") as failed:
        run_build(home, workspace_with(home, hog), memory_mb=1024)
    assert "allocation failed" in failed.value.output


@pytest.mark.parametrize(
    ("dependencies", "refusal"),
    [
        ({"left-pad": "file:../../sheen.db"}, "only registry versions are allowed"),
        ({"evil": "http://127.0.0.1:5432/x.tgz"}, "only registry versions are allowed"),
        ({"evil": "git+ssh://git@host/repo.git"}, "only registry versions are allowed"),
        ({"alias": "npm:other@1"}, "only registry versions are allowed"),
    ],
)
def test_dependencies_come_only_from_the_registry(
    home: Path, dependencies: dict[str, str], refusal: str
) -> None:
    workspace = workspace_with(home, "true")
    package = json.loads((workspace / "package.json").read_text())
    (workspace / "package.json").write_text(json.dumps({**package, "dependencies": dependencies}))
    with pytest.raises(BuildError, match=refusal):
        run_build(home, workspace)


def test_a_generated_npmrc_is_refused(home: Path) -> None:
    workspace = workspace_with(home, "true", **{".npmrc": "registry=http://127.0.0.1:5432/"})
    with pytest.raises(BuildError, match=r"a generated \.npmrc is not allowed"):
        run_build(home, workspace)


@pytest.fixture
def fresh_sandbox_check() -> Iterator[None]:
    sandbox_module.check_sandbox_works.cache_clear()
    yield
    sandbox_module.check_sandbox_works.cache_clear()


def test_without_bubblewrap_nothing_runs_and_the_error_says_what_to_do(
    home: Path, monkeypatch: pytest.MonkeyPatch, fresh_sandbox_check: None
) -> None:
    monkeypatch.setenv("PATH", str(home))  # no bwrap to be found
    workspace = workspace_with(home, "node -e \"require('fs').writeFileSync('ran','')\"")
    with pytest.raises(SandboxUnavailable, match=r"apt-get install bubblewrap.*SHEEN_SANDBOX=off"):
        run_build(home, workspace)
    assert not (workspace / "ran").exists()


def test_the_escape_hatch_runs_unsandboxed_for_trusted_local_use(home: Path) -> None:
    script = "node -e \"require('fs').mkdirSync('dist');require('fs').writeFileSync('dist/index.html',JSON.stringify({uid:process.getuid()}))\""
    seen = run_build(home, workspace_with(home, script), enabled=False)
    assert seen["uid"] == os.geteuid()
