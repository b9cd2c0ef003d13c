"""Run untrusted programs (generated build commands, the browser that looks at generated pages) in
a bubblewrap sandbox: an unprivileged user, a read-only system, nothing of the host's files but
the system folders and what is bound in on purpose (the build's own fresh folder at /workspace);
private, size-capped /tmp and /dev/shm; its own process tree; no network at all (an npm install
reaches its registry only through a socket bound in, see registry.py); a cgroup of its own for
processes and memory (tmpfs included), CPU time and file size limits, a time limit, and an
environment of our choosing (no keys, tokens or secrets of ours). Killed whole on timeout."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sheen_pipeline.build.cgroups import confined_group
from sheen_pipeline.config import SandboxSettings

KILL_GRACE_S = 5.0
MAX_OUTPUT_CHARS = 20_000
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
NOBODY = 65534
MIB = 1024 * 1024
SHM_BYTES = 64 * MIB
WORKSPACE = "/workspace"  # where a command's folder appears inside the sandbox
SYSTEM_FOLDERS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/opt")
FALLBACK_HINT = (
    "install bubblewrap (apt-get install bubblewrap) where unprivileged user namespaces are "
    "allowed, or, for trusted local use only, set SHEEN_SANDBOX=off"
)


class CommandFailed(RuntimeError):
    """A build command failed or ran out of time; the message says which and how."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start here; generated code is then never run."""


@dataclass(frozen=True)
class CommandOutput:
    command: str
    output: str


@dataclass(frozen=True)
class Bind:
    """A host folder made visible inside the sandbox at destination (read-only unless writable)."""

    source: Path
    destination: str
    writable: bool = False


def base_env(home: str) -> dict[str, str]:
    """Only what node and its tools need; nothing is copied from this process's environment."""
    return {
        "PATH": ":".join([*sorted(str(d) for d in _tool_dirs()), SYSTEM_PATH]),
        "HOME": home,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "NODE_ENV": "production",
        "CI": "true",
    }


def _tool_dirs() -> set[Path]:
    """Folders of node and npm (and where their links point), to be visible read-only."""
    dirs = set()
    for name in ("npm", "node"):
        found = shutil.which(name)
        if found:
            dirs |= {Path(found).parent, Path(found).resolve().parent}
    return dirs


class Sandbox:
    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def inside(self, bind: Bind) -> str:
        """Where the bound folder is seen by the command (where it is, without a sandbox)."""
        return bind.destination if self.enabled else str(bind.source)

    @contextmanager
    def confined(
        self,
        label: str,
        binds: Sequence[Bind],
        env: Mapping[str, str],
        cpu_s: float,
        chdir: str = "/",
    ) -> Iterator[list[str]]:
        """The command-line prefix that runs a program confined, with a cgroup of its own for
        as long as the block lasts (its processes are killed when it ends)."""
        check_sandbox_works()
        memory = self.settings.memory_mb * MIB
        with confined_group(label, self.settings.max_processes, memory) as joins:
            limits = self._limits(cpu_s, per_uid_processes=not joins)
            if os.geteuid() == 0:  # root drops to nobody, which must own what it may write
                for bind in binds:
                    if bind.writable:
                        _chown_tree(bind.source, NOBODY)
            yield _sandboxed(binds, chdir, env, limits, joins, tmp_bytes=memory)

    def run(
        self,
        args: Sequence[str],
        workspace: Path,
        timeout_s: float,
        *,
        binds: Sequence[Bind] = (),
        env: Mapping[str, str] | None = None,
        shown: str | None = None,
    ) -> CommandOutput:
        """Run args in the workspace (a folder only this build's commands ever get, seen at
        /workspace); CommandFailed when it fails or runs out of time. shown is how the command
        is named in output and errors (args by default)."""
        folder = Bind(workspace, WORKSPACE, writable=True)
        where = self.inside(folder)
        full_env = {**base_env(f"{where}/.home"), **(env or {})}
        shown = shown or " ".join(args)
        if not self.enabled:
            return _run(list(args), full_env, timeout_s, shown, cwd=workspace)
        label = workspace.name
        with self.confined(label, [folder, *binds], full_env, timeout_s, where) as prefix:
            return _run([*prefix, *args], {"PATH": SYSTEM_PATH}, timeout_s, shown)

    def _limits(self, cpu_s: float, per_uid_processes: bool) -> list[str]:
        """prlimit's share: the data (private memory) and file size limits and CPU time; the
        process limit only when no cgroup keeps it per command (it is counted per uid)."""
        limits = [
            "prlimit",
            f"--data={self.settings.memory_mb * MIB}",
            f"--fsize={self.settings.max_file_mb * MIB}",
            f"--cpu={int(cpu_s) + 1}",
        ]
        if per_uid_processes:
            limits.append(f"--nproc={self.settings.max_processes}")
        return [*limits, "--"]


# Run as root, in a private mount namespace: first join the command's cgroups, then bind the
# folders under a fresh /mnt that anyone may traverse (bwrap, as nobody, resolves its sources by
# path, and SHEEN_HOME may sit in a folder only root can enter); then root becomes nobody for good.
STAGE_AS_ROOT = (
    'while [ "$1" != -- ]; do echo $$ > "$1" && shift; done && shift && '
    'mount -t tmpfs -o mode=0755,size=1m sheen-sandbox /mnt && n=0 && while [ "$1" != -- ]; do '
    'mkdir /mnt/$n && mount --bind "$1" /mnt/$n && n=$((n+1)) && shift; done && shift && '
    f'exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups --inh-caps=-all -- "$@"'
)


def _sandboxed(
    binds: Sequence[Bind],
    chdir: str,
    env: Mapping[str, str],
    limits: Sequence[str],
    joins: Sequence[Path],
    tmp_bytes: int,
) -> list[str]:
    """The whole command-line prefix: as root, cgroups joined, binds staged and a drop to nobody
    around bwrap; as any other user, bwrap straight away (its user namespace makes it
    unprivileged)."""
    if os.geteuid() != 0:
        return [*limits, *_bwrap(binds, chdir, env, tmp_bytes)]
    staged = [Bind(Path(f"/mnt/{n}"), b.destination, b.writable) for n, b in enumerate(binds)]
    stage = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", STAGE_AS_ROOT]
    return [
        *stage,
        "sh",
        *map(str, joins),
        "--",
        *(str(b.source) for b in binds),
        "--",
        *limits,
        *_bwrap(staged, chdir, env, tmp_bytes),
    ]


def _bwrap(binds: Sequence[Bind], chdir: str, env: Mapping[str, str], tmp_bytes: int) -> list[str]:
    """The bwrap command line: system folders read-only, each bind where it belongs, sized
    private tmpfs folders, everything else absent or read-only, and exactly env."""
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
    for name, value in env.items():
        args += ["--setenv", name, value]
    for folder in SYSTEM_FOLDERS:
        path = Path(folder)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), folder]
        elif path.is_dir():
            args += ["--ro-bind", folder, folder]
    for tool_dir in sorted(_tool_dirs()):
        if not tool_dir.is_relative_to("/usr"):  # node from elsewhere (nvm, a tarball)
            args += ["--ro-bind-try", str(tool_dir), str(tool_dir)]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(SHM_BYTES), "--tmpfs", "/dev/shm"]
    args += ["--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    for bind in binds:
        args += ["--bind" if bind.writable else "--ro-bind", str(bind.source), bind.destination]
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]  # bwrap's own tmpfs folders
    return [*args, "--chdir", chdir, "--"]


def _chown_tree(root: Path, uid: int) -> None:
    """Hand a folder the host has just made (and nothing has touched) to the sandbox's user."""
    for folder, dirs, names in os.walk(root):
        os.chown(folder, uid, uid, follow_symlinks=False)
        for name in (*dirs, *names):
            os.chown(Path(folder) / name, uid, uid, follow_symlinks=False)


@cache
def check_sandbox_works() -> None:
    """Start an empty sandbox once per process; raise SandboxUnavailable saying why not."""
    tools = (
        ("bwrap", "prlimit", "unshare", "setpriv") if os.geteuid() == 0 else ("bwrap", "prlimit")
    )
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise SandboxUnavailable(f"{' and '.join(missing)} not found: {FALLBACK_HINT}")
    probe = subprocess.run(
        [*_sandboxed((), "/", {}, (), (), tmp_bytes=MIB), "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        reason = probe.stderr.strip() or f"exit code {probe.returncode}"
        raise SandboxUnavailable(f"the build sandbox cannot start ({reason}): {FALLBACK_HINT}")


def _tail(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT_CHARS else "…" + text[-MAX_OUTPUT_CHARS:]


def _kill_group(process: subprocess.Popen[str]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=KILL_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue


def _run(
    command: list[str],
    env: dict[str, str],
    timeout_s: float,
    shown: str,
    *,
    cwd: Path = Path("/"),
) -> CommandOutput:
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        output, _ = process.communicate()
        raise CommandFailed(
            f"`{shown}` timed out after {timeout_s:g}s and was killed", _tail(output)
        ) from None
    finally:
        if process.poll() is None:
            _kill_group(process)
    if process.returncode != 0:
        raise CommandFailed(_failure(shown, process.returncode), _tail(output))
    return CommandOutput(shown, _tail(output))


def _failure(shown: str, returncode: int) -> str:
    """Exit codes say what the sandbox did: a signal means a limit or a crash."""
    if returncode < 0 or returncode > 128:
        number = -returncode if returncode < 0 else returncode - 128
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = ""
        hint = {
            "SIGXCPU": "its CPU time limit",
            "SIGXFSZ": "the file size limit (SHEEN_SANDBOX_MAX_FILE_MB)",
            "SIGKILL": "killed (out of memory, SHEEN_SANDBOX_MEMORY_MB, or out of time)",
            "SIGSEGV": "a crash (often the memory limit, SHEEN_SANDBOX_MEMORY_MB)",
            "SIGABRT": "aborted (often the memory limit, SHEEN_SANDBOX_MEMORY_MB)",
        }.get(name, "a signal")
        return f"`{shown}` was stopped by {name or number}: {hint}"
    return f"`{shown}` failed with exit code {returncode}"
