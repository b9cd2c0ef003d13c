"""The process runs are forked from. It imports the code location once, then forks one child per
run, so a run worker starts with Dagster and the code location already imported: a freshly
spawned worker spends about 1.5 CPU-s of its life importing them.

It speaks one line at a time over stdin and stdout:

    ready | failed <reason>           once, after the imports
    <ExecuteRunArgs as JSON>  ->  <pid>   per run

A child runs what `dagster api execute_run` runs. The forker ends when its stdin closes (the
launcher's process ended); runs it forked keep going.

    python -m sheen_pipeline.runs.run_forker MODULE [MODULE ...]
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import TextIO


class ForkUnsafeImport(RuntimeError):
    """Importing the modules started a thread, and a fork copies a thread's memory half-way."""


def preload(modules: Sequence[str]) -> None:
    """Imports what every run needs, so that children start with it, and freezes it: the
    collector of a child never walks these objects (each full collection would, touching every
    inherited page, and so would the one at a child's exit, about 0.9 CPU-s of a forked `sheen
    build`'s 2)."""
    for module in modules:
        importlib.import_module(module)
    importlib.import_module("dagster._cli.api")
    if threading.active_count() > 1:
        names = ", ".join(thread.name for thread in threading.enumerate()[1:])
        raise ForkUnsafeImport(f"importing {', '.join(modules)} started threads ({names})")
    gc.freeze()


def _run_child(execute_run_args: str) -> None:
    """In the forked child: the run, as `dagster api execute_run` does it; never returns."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # The protocol's pipes are the forker's, not the run's: the run reads nothing and writes its
    # output where the forker writes its errors.
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    from dagster._cli.api import execute_run_command

    code = 0
    try:
        execute_run_command.callback(execute_run_args, None)  # type: ignore[misc]
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def serve(requests: TextIO, answers: TextIO) -> None:
    """Forks a run for each line until the input ends."""
    # Nothing here waits on a run: the kernel reaps them, so none is left a zombie.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for line in requests:
        execute_run_args = line.strip()
        if not execute_run_args:
            continue
        answers.flush()
        pid = os.fork()
        if pid == 0:
            _run_child(execute_run_args)
        answers.write(f"{pid}\n")
        answers.flush()


def main(modules: Sequence[str]) -> int:
    # An interrupt meant for the whole terminal ends the runs, not this process: it ends when
    # its launcher does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        preload(modules)
    except Exception as error:
        traceback.print_exc()
        reason = f"{type(error).__name__}: {error}".replace("\n", " ")
        print(f"failed {reason}", flush=True)
        os._exit(1)  # not waiting for a thread the import started
    print("ready", flush=True)
    serve(sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
