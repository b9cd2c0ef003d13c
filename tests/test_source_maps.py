"""Bundle stack traces mapped to sources through Source Map v3, against a map encoded here."""

from __future__ import annotations

import json

from sheen_pipeline.checks.source_maps import Position, SourceMap, SourceMaps

CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def vlq(value: int) -> str:
    """Encode one number as the specification does (sign in the lowest bit, 5 bits a digit)."""
    rest = (-value << 1) | 1 if value < 0 else value << 1
    out = ""
    while True:
        digit, rest = rest & 31, rest >> 5
        out += CHARS[digit | (32 if rest else 0)]
        if not rest:
            return out


def encode(lines: list[list[tuple[int, int, int, int]]]) -> str:
    """Absolute segments to the relative VLQ form a bundler writes."""
    source = source_line = source_column = 0
    out = []
    for segments in lines:
        column, parts = 0, []
        for gen_column, src, line, col in segments:
            parts.append(
                vlq(gen_column - column)
                + vlq(src - source)
                + vlq(line - source_line)
                + vlq(col - source_column)
            )
            column, source, source_line, source_column = gen_column, src, line, col
        out.append(",".join(parts))
    return ";".join(out)


# Line 1 of the bundle: react-dom code at column 0, the app's Hero at column 5000, main at 9000;
# line 2: App at column 10.
SEGMENTS = [[(0, 0, 99, 0), (5000, 1, 11, 2), (9000, 2, 3, 0)], [(10, 1, 20, 4)]]
MAP = {
    "version": 3,
    "sources": ["../../node_modules/react-dom/index.js", "../../src/App.jsx", "../../src/main.jsx"],
    "mappings": encode(SEGMENTS),
}
BUNDLE = "http://127.0.0.1:4173/assets/index-3f2a.js"


def test_a_generated_position_maps_to_the_source_line_and_column() -> None:
    parsed = SourceMap.parse(json.dumps(MAP).encode(), "assets/index-3f2a.js.map")
    assert parsed is not None
    assert parsed.sources[1] == "src/App.jsx"  # relative to the map, in the project
    assert parsed.locate(1, 5001) == Position("src/App.jsx", 12, 3)
    assert parsed.locate(1, 7000) == Position("src/App.jsx", 12, 3)  # inside the same segment
    assert parsed.locate(2, 11) == Position("src/App.jsx", 21, 5)
    assert parsed.locate(3, 1) is None


def test_a_stack_names_the_apps_own_frame_before_a_dependencys() -> None:
    maps = SourceMaps({"assets/index-3f2a.js.map": json.dumps(MAP).encode()})
    stack = (
        "TypeError: window.notAFunction is not a function\n"
        f"    at renderWithHooks ({BUNDLE}:1:40)\n"
        f"    at Hero ({BUNDLE}:1:5123)\n"
        f"    at {BUNDLE}:1:9001"
    )
    assert str(maps.source_of(stack)) == "src/App.jsx:12:3"


def test_an_unmappable_stack_names_nothing() -> None:
    maps = SourceMaps({"assets/other.js.map": b"not json"})
    assert maps.source_of(f"at x ({BUNDLE}:1:5)") is None
    assert maps.source_of("at x (http://127.0.0.1:4173/assets/other.js:1:5)") is None
    assert maps.source_of("no frames at all") is None
