"""Stack traces of a bundle mapped back to the sources: `assets/index-3f2a.js:40:57893` becomes
`src/App.jsx:12:5` through the build's source maps (Source Map v3: base64 VLQ segments), so a
repair is told which file and line threw, not where the minified bundle did."""

from __future__ import annotations

import bisect
import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

BASE64 = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}
FRAME = re.compile(r"(https?://[^\s()]+?):(\d+):(\d+)")
DEPENDENCIES = "node_modules/"


@dataclass(frozen=True)
class Position:
    source: str
    line: int  # 1-based, as a stack trace and an editor count
    column: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}"


@dataclass
class SourceMap:
    """One bundle's map: per generated line, its segments sorted by generated column."""

    sources: list[str]
    lines: list[list[tuple[int, int, int, int]]] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes, map_path: str) -> SourceMap | None:
        """None when data is not a usable v3 map (a build may write anything)."""
        try:
            raw = json.loads(data)
            mappings, sources = raw["mappings"], raw["sources"]
            root = raw.get("sourceRoot") or ""
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(mappings, str) or not isinstance(sources, list):
            return None
        folder = posixpath.dirname(map_path)
        named = [_project_path(folder, str(root), str(source)) for source in sources]
        return cls(named, _decode(mappings))

    def locate(self, line: int, column: int) -> Position | None:
        """The source position of a 1-based generated line and column."""
        if not 0 < line <= len(self.lines):
            return None
        segments = self.lines[line - 1]
        at = bisect.bisect_right(segments, (column - 1, 1 << 62)) - 1
        if at < 0:
            return None
        _column, source, source_line, source_column = segments[at]
        if not 0 <= source < len(self.sources):
            return None
        return Position(self.sources[source], source_line + 1, source_column + 1)


def _project_path(folder: str, root: str, source: str) -> str:
    """A source as a path of the project (`src/App.jsx`): maps name sources relative to
    themselves, and the output folder sits in the project, so leading `..` are dropped."""
    path = posixpath.normpath(posixpath.join(folder, root, source.split("://")[-1]))
    while path.startswith("../"):
        path = path[3:]
    return path


def _decode(mappings: str) -> list[list[tuple[int, int, int, int]]]:
    """Segments (generated column, source index, source line, source column), all absolute;
    segments without a source position are skipped."""
    lines: list[list[tuple[int, int, int, int]]] = []
    source = source_line = source_column = 0
    for text in mappings.split(";"):
        column, segments = 0, []
        for piece in text.split(","):
            if not piece:
                continue
            values = _vlq(piece)
            column += values[0]
            if len(values) >= 4:
                source += values[1]
                source_line += values[2]
                source_column += values[3]
                segments.append((column, source, source_line, source_column))
        segments.sort()
        lines.append(segments)
    return lines


def _vlq(piece: str) -> list[int]:
    values, shift, value = [], 0, 0
    for char in piece:
        digit = BASE64.get(char)
        if digit is None:
            return [0]
        value += (digit & 31) << shift
        if digit & 32:
            shift += 5
            continue
        values.append(-(value >> 1) if value & 1 else value >> 1)
        shift = value = 0
    return values


class SourceMaps:
    """The source maps of a build's bundles, parsed when a stack trace first needs one."""

    def __init__(self, maps: Mapping[str, bytes]) -> None:
        self._raw = maps
        self._parsed: dict[str, SourceMap | None] = {}

    def _for(self, bundle: str) -> SourceMap | None:
        key = f"{bundle}.map"
        if key not in self._parsed:
            data = self._raw.get(key)
            self._parsed[key] = SourceMap.parse(data, key) if data is not None else None
        return self._parsed[key]

    def source_of(self, stack: str) -> Position | None:
        """Where the stack's first frame in the app's own code is (a dependency's frame only
        when no frame is the app's); None when no frame can be mapped."""
        found = []
        for url, line, column in FRAME.findall(stack):
            bundle = unquote(urlsplit(url).path).lstrip("/")
            source_map = self._for(bundle)
            position = source_map.locate(int(line), int(column)) if source_map else None
            if position is not None:
                found.append(position)
        own = [p for p in found if DEPENDENCIES not in p.source]
        return next(iter(own or found), None)
