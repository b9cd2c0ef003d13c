"""A hostile build, tried as an attacker would with real bubblewrap, npm and Chromium: it can
neither write outside its workspace, nor affect another build, nor reach any local service.
Loopback tripwires record any connection; a local registry proves which tarball was installed."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest
from dagster import DagsterInstance

from sheen_pipeline.build.npm import NpmRegistry, build_npm, run_with_registry
from sheen_pipeline.build.sandbox import CommandFailed, Sandbox
from sheen_pipeline.build.static import BuildError
from sheen_pipeline.checks.browser import check_preview
from sheen_pipeline.config import FileLimits, SandboxSettings
from sheen_pipeline.events.types import EventType
from sheen_pipeline.fsutil import UnreadableName
from sheen_pipeline.runs.local import retry_build
from sheen_pipeline.service import BuildService
from tests.support.builds import build
from tests.support.npm_registry import LocalRegistry
from tests.support.processes import processes_with
from tests.support.tripwire import Tripwire
from tests.support.waiting import wait_for

THROWING_PAGE = (
    "<!DOCTYPE html><html lang='en'><head><title>t</title></head>"
    "<body><h1>t</h1><script>notDefinedAnywhere()</script></body></html>"
)


def node_script(source: str) -> str:
    """A build script running source with node, on one line (JSON-quoted for the shell)."""
    return f"node -e {json.dumps(' '.join(line.strip() for line in source.splitlines()))}"


def plant_link(host: Path, then: str) -> str:
    """Replace the source folder src/ with a link to a host folder, then do `then`."""
    return node_script(
        "const fs=require('fs');fs.rmSync('src',{recursive:true,force:true});"
        f"fs.symlinkSync({json.dumps(str(host))},'src');{then}"
    )


@pytest.fixture
def host_folder(tmp_path: Path) -> Path:
    """A folder elsewhere on the host holding a root-only file."""
    folder = tmp_path / "host"
    folder.mkdir()
    (folder / "index.html").write_text("original")
    (folder / "index.html").chmod(0o600)
    return folder


def untouched(host: Path) -> bool:
    return [p.name for p in host.iterdir()] == ["index.html"] and (
        host / "index.html"
    ).read_text() == "original"


@pytest.fixture
def npm_builds(sheen_home: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("SHEEN_TEST_PROVIDER", "tests.support.providers:NpmProjectProvider")
    return monkeypatch


def test_a_link_planted_over_a_source_folder_is_never_followed_by_the_repair_round(
    npm_builds: pytest.MonkeyPatch, instance: DagsterInstance, host_folder: Path
) -> None:
    writes_failing_page = (
        "fs.mkdirSync('dist',{recursive:true});"
        f"fs.writeFileSync('dist/index.html',{json.dumps(THROWING_PAGE)});"
    )
    npm_builds.setenv("SHEEN_PREVIEW_CHECKS", "on")
    npm_builds.setenv("SHEEN_TEST_NPM_BUILD", plant_link(host_folder, writes_failing_page))
    service = BuildService.from_env()
    outcome, _ = build(instance, service, prompt="an npm site")
    assert outcome.status == "failed" and "no_errors" in str(outcome.error)
    events = [e.type for e in service.events.after(outcome.build_id)]
    assert EventType.REPAIR_STARTED in events  # the sources were laid out again, and rebuilt
    assert untouched(host_folder)
    source = service.workspace_dir(outcome.build_id) / "src"
    assert source.is_dir() and not source.is_symlink()  # the build's link never reached it


def test_a_link_planted_over_a_source_folder_is_never_followed_by_a_retry(
    npm_builds: pytest.MonkeyPatch, instance: DagsterInstance, host_folder: Path
) -> None:
    npm_builds.setenv("SHEEN_TEST_NPM_BUILD", plant_link(host_folder, "process.exit(1)"))
    service = BuildService.from_env()
    outcome, _ = build(instance, service, prompt="an npm site")
    assert outcome.status == "failed" and "npm run build" in str(outcome.error)
    retried = retry_build(instance, service, outcome.build_id, lambda line: None)
    assert retried.status == "failed" and len(retried.dagster_run_ids) == 1
    assert untouched(host_folder)
    assert not list(service.settings.workspaces_dir.glob("*.sandbox-*"))  # each one deleted


POISON = """
const fs = require('fs'), path = require('path');
const cache = process.env.npm_config_cache;
const npmRoot = path.join(path.dirname(fs.realpathSync(process.env.npm_execpath)), '..');
const cacache = require(path.join(npmRoot, 'node_modules', 'cacache'));
const seen = {cache, tried_shared: 'unknown'};
try { fs.writeFileSync(path.join(process.argv[1], 'planted'), 'x'); seen.tried_shared = 'written'; }
catch (error) { seen.tried_shared = 'refused: ' + error.code; }
fs.mkdirSync(cache, {recursive: true});
fs.writeFileSync(path.join(cache, 'marker-from-a'), 'a was here');
const keys = ['sheen-probe/-/sheen-probe-1.0.0.tgz', 'sheen-probe'].map(
  p => 'make-fetch-happen:request-cache:http://127.0.0.1:4873/' + p);
Promise.all(keys.map(k => cacache.put(cache, k, 'module.exports = "FROM BUILD A";')))
  .then(() => {
    fs.mkdirSync('dist', {recursive: true});
    fs.writeFileSync('dist/index.html', JSON.stringify(seen));
  });
"""

REPORT = """
const fs = require('fs');
const cache = process.env.npm_config_cache;
const marker = fs.existsSync(require('path').join(cache, 'marker-from-a'));
const installed = fs.readFileSync('node_modules/sheen-probe/index.js', 'utf8');
fs.mkdirSync('dist', {recursive: true});
fs.writeFileSync('dist/index.html', JSON.stringify({marker, installed}));
"""


def npm_project(tmp_path: Path, name: str, build_script: str, **extra: object) -> Path:
    workspace = tmp_path / "workspaces" / name
    workspace.mkdir(parents=True)
    package = {"name": name, "scripts": {"build": build_script}, **extra}
    (workspace / "package.json").write_text(json.dumps(package))
    return workspace


def test_one_builds_cache_writes_are_invisible_to_another_which_installs_the_registrys_package(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "npm-cache"  # SHEEN_NPM_CACHE: the pipeline's tarballs
    sandbox = Sandbox(SandboxSettings())
    with LocalRegistry() as registry:
        registry.publish("sheen-probe", "1.0.0", {"index.js": 'module.exports = "REGISTRY";'})
        npm = NpmRegistry(shared, registry.url)
        dependency = {"dependencies": {"sheen-probe": "1.0.0"}}
        a = npm_project(tmp_path, "a", f"{node_script(POISON)} {shared}", **dependency)
        build_npm(a, tmp_path / "dist-a", 120, FileLimits(), sandbox, npm)
        seen_by_a = json.loads((tmp_path / "dist-a" / "index.html").read_text())
        assert seen_by_a["tried_shared"] == "refused: ENOENT"  # the shared cache is not there
        assert seen_by_a["cache"] == "/tmp/.npm"  # a private, throwaway cache for the build step

        b = npm_project(tmp_path, "b", node_script(REPORT), **dependency)
        build_npm(b, tmp_path / "dist-b", 120, FileLimits(), sandbox, npm)
        seen_by_b = json.loads((tmp_path / "dist-b" / "index.html").read_text())
    assert seen_by_b == {"marker": False, "installed": 'module.exports = "REGISTRY";'}
    kept = [p for p in shared.rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in kept] == list(registry.tarballs.values())  # only its bytes


@pytest.mark.parametrize(
    ("files", "refusal"),
    [
        (
            {
                "package.json": {
                    "name": "w",
                    "workspaces": ["packages/*"],
                    "scripts": {"build": "true"},
                },
                "packages/inner/package.json": {
                    "name": "inner",
                    "dependencies": {"x": "TRIPWIRE/x.tgz"},
                },
            },
            r"packages/inner/package.json dependencies 'x'",
        ),
        (
            {
                "package.json": {
                    "scripts": {"build": "true"},
                    "peerDependencies": {"x": "TRIPWIRE/x.tgz"},
                }
            },
            r"package.json peerDependencies 'x'",
        ),
        (
            {
                "package.json": {
                    "scripts": {"build": "true"},
                    "dependencies": {"left-pad": "1.3.0"},
                    "overrides": {"left-pad": {"x": "TRIPWIRE/x.tgz"}},
                }
            },
            r"package.json overrides 'left-pad' 'x'",
        ),
        (
            {
                "package.json": {"scripts": {"build": "true"}, "dependencies": {"x": "1.0.0"}},
                "package-lock.json": {
                    "lockfileVersion": 3,
                    "packages": {
                        "node_modules/x": {"version": "1.0.0", "resolved": "TRIPWIRE/x.tgz"}
                    },
                },
            },
            r"package-lock.json packages 'node_modules/x': resolved must be on the registry",
        ),
    ],
)
def test_url_dependencies_anywhere_are_refused_before_any_connection(
    tmp_path: Path, files: dict[str, object], refusal: str
) -> None:
    with Tripwire() as tripwire:
        workspace = tmp_path / "workspaces" / "w"
        for path, document in files.items():
            target = workspace / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(document).replace("TRIPWIRE", tripwire.url))
        registry = NpmRegistry(tmp_path / "npm-cache")
        with pytest.raises(BuildError, match=refusal):
            build_npm(
                workspace, tmp_path / "dist", 60, FileLimits(), Sandbox(SandboxSettings()), registry
            )
    assert tripwire.hits == 0


REACH = """
const http = require('http'), net = require('net');
const out = {};
const tries = [['tripwire', +process.argv[1]], ['bridge', 4873]];
let left = tries.length;
for (const [name, port] of tries) {
  const s = net.connect(port, '127.0.0.1');
  s.on('connect', () => { out[name] = 'connected'; s.end(); done(); });
  s.on('error', e => { out[name] = 'refused: ' + e.code; done(); });
}
function done() { if (--left === 0) console.log('REACH ' + JSON.stringify(out)); }
"""


def test_the_install_step_reaches_the_registry_socket_and_nothing_else(tmp_path: Path) -> None:
    """Whatever a manifest names, the install's network is its own loopback, where only the
    bridge to the registry listens."""
    scratch = tmp_path / "scratch"
    (scratch / ".home").mkdir(parents=True)
    with Tripwire() as tripwire, LocalRegistry() as registry:
        ran = run_with_registry(
            ["node", "-e", REACH, str(tripwire.port)],
            scratch,
            60,
            Sandbox(SandboxSettings()),
            NpmRegistry(tmp_path / "npm-cache", registry.url),
        )
    (line,) = [line for line in ran.output.splitlines() if line.startswith("REACH ")]
    assert json.loads(line.removeprefix("REACH ")) == {
        "tripwire": "refused: ECONNREFUSED",
        "bridge": "connected",
    }
    assert tripwire.hits == 0


def test_a_pages_requests_to_loopback_never_leave_the_browser_and_are_reported(
    tmp_path: Path,
) -> None:
    with Tripwire() as tripwire:
        page = (
            "<!DOCTYPE html><html lang='en'><head><title>t</title></head><body><h1>t</h1>"
            f"<img src='{tripwire.url}/pixel.png' alt='x'>"
            f"<script>fetch('{tripwire.url}/graphql?query=mutation').catch(() => {{}});"
            f"try {{ new WebSocket('ws://127.0.0.1:{tripwire.port}/ws'); }} catch (e) {{}}"
            f"navigator.sendBeacon('{tripwire.url}/beacon', 'x');</script></body></html>"
        )
        report = check_preview(
            {"index.html": page.encode()}, 0, tmp_path / "shots", Sandbox(SandboxSettings())
        )
    assert tripwire.hits == 0
    (outside,) = [r for r in report.results if r.name == "own_origin_only"]
    assert outside.passed is False
    refused = outside.details["refused"]
    assert f"{tripwire.url}/pixel.png" in refused
    assert f"{tripwire.url}/graphql?query=mutation" in refused
    assert f"ws://127.0.0.1:{tripwire.port}/ws" in refused


@pytest.mark.parametrize("folder", ["/tmp", "/dev/shm"])
def test_tmpfs_writes_past_the_memory_limit_fail_the_build(tmp_path: Path, folder: str) -> None:
    hog = (
        f"for i in 1 2 3 4 5 6; do head -c 200000000 /dev/zero > {folder}/f$i || exit 1; "
        "echo wrote $i; done"
    )
    workspace = npm_project(tmp_path, "hog", f"sh -c '{hog}; mkdir -p dist; touch dist/index.html'")
    with pytest.raises(CommandFailed, match=r"`npm run build` (failed|was stopped)") as failed:
        build_npm(
            workspace,
            tmp_path / "dist",
            120,
            FileLimits(),
            Sandbox(SandboxSettings(memory_mb=512)),
            NpmRegistry(tmp_path / "npm-cache"),
        )
    assert "wrote 6" not in failed.value.output  # stopped by the limit, not before it
    assert "> sh -c" in failed.value.output  # npm itself started: the writes were reached


def test_a_fork_bomb_in_one_build_does_not_stop_another_build_from_starting(
    tmp_path: Path,
) -> None:
    marker = f"{uuid.uuid4().int % 10_000}.75"  # a unique sleep length to find them by
    bomb = node_script(  # starts processes until the limit refuses more, and holds them
        "for (let i = 0; i < 100; i++) require('child_process')"
        f".spawn('sleep', ['{marker}'], {{stdio: 'ignore'}}).on('error', () => {{}});"
        "setInterval(() => {}, 1000);"
    )
    failures: list[BaseException] = []

    def run_bomb() -> None:
        try:
            build_npm(
                npm_project(tmp_path, "bomb", bomb),
                tmp_path / "dist-bomb",
                20,
                FileLimits(),
                Sandbox(SandboxSettings(max_processes=64)),
                NpmRegistry(tmp_path / "npm-cache"),
            )
        except CommandFailed as failed:
            failures.append(failed)

    bombing = threading.Thread(target=run_bomb)
    bombing.start()
    # The bomb's build holds its whole process limit; another build starts and finishes.
    wait_for(lambda: len(processes_with(marker)) >= 30, 20, "the bomb to fill its limit")
    writes_page = "mkdir -p dist && echo ok > dist/index.html"
    files, _, _ = build_npm(
        npm_project(tmp_path, "other", f"sh -c '{writes_page}'"),
        tmp_path / "dist-other",
        60,
        FileLimits(),
        Sandbox(SandboxSettings(max_processes=64)),
        NpmRegistry(tmp_path / "npm-cache"),
    )
    assert [f.path for f in files] == ["index.html"]
    bombing.join(timeout=60)
    assert not bombing.is_alive() and len(failures) == 1
    wait_for(lambda: not processes_with(marker), 15, "every process of the bomb to end")


def test_a_file_name_that_is_not_utf8_fails_the_build_saying_so(tmp_path: Path) -> None:
    writes = node_script(
        "const fs=require('fs');fs.mkdirSync('dist');fs.writeFileSync('dist/index.html','x');"
        "fs.writeFileSync(Buffer.from([0x64,0x69,0x73,0x74,0x2f,0x63,0x61,0x66,0xe9]),'x');"
    )
    workspace = npm_project(tmp_path, "names", writes)
    with pytest.raises(UnreadableName, match=r"the file name b'caf\\xe9' is not UTF-8"):
        build_npm(
            workspace,
            tmp_path / "dist",
            60,
            FileLimits(),
            Sandbox(SandboxSettings()),
            NpmRegistry(tmp_path / "npm-cache"),
        )
    assert not list(workspace.parent.glob("*.sandbox-*"))  # its folder deleted all the same


def test_links_and_special_files_in_the_output_are_left_out_and_said(tmp_path: Path) -> None:
    writes = node_script(
        "const fs=require('fs'),cp=require('child_process');fs.mkdirSync('dist');"
        "fs.writeFileSync('dist/index.html','ok');fs.writeFileSync('dist/a.txt','a');"
        "fs.linkSync('dist/a.txt','dist/b.txt');fs.symlinkSync('/etc/passwd','dist/passwd');"
        "cp.execSync('mkfifo dist/pipe');"
    )
    files, outputs, _ = build_npm(
        npm_project(tmp_path, "links", writes),
        tmp_path / "dist",
        60,
        FileLimits(),
        Sandbox(SandboxSettings()),
        NpmRegistry(tmp_path / "npm-cache"),
    )
    assert [f.path for f in files] == ["index.html"]
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == ["index.html"]
    (said,) = [o for o in outputs if o.command == "left out of dist/"]
    assert said.output.splitlines() == [
        "a.txt (a hard link)",
        "b.txt (a hard link)",
        "passwd (not a regular file)",
        "pipe (not a regular file)",
    ]
