"""Text for a terminal: generated content (file names, model answers, build output, errors) may
carry escape sequences that move the cursor, rewrite lines or retitle the window, so a fake
"build completed" could be printed. Everything the CLI prints goes through printable()."""

from __future__ import annotations

import re

import click

# ESC-introduced sequences (CSI, OSC, the rest) and then any other C0/C1 control but \n and \t.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, clearing
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: titles, hyperlinks
    r"|\x1b[@-_]?"  # other two-character escapes, or a lone ESC
    r"|\x9b[0-?]*[ -/]*[@-~]"  # the 8-bit CSI
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """text without terminal escape sequences and control characters (newlines and tabs kept)."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def echo(text: str, err: bool = False) -> None:
    click.echo(printable(text), err=err)
