"""The flat-colour reading of a PNG against PNGs written here with each of the five row filters."""

from __future__ import annotations

import struct
import zlib

import pytest

from sheen_pipeline.checks.flat_image import is_one_colour

WIDTH, HEIGHT = 5, 4


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _filtered(row: bytes, above: bytes, kind: int, bpp: int) -> bytes:
    """PNG's forward filter, byte by byte, as the specification writes it."""
    out = bytearray()
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = above[i]
        c = above[i - bpp] if i >= bpp else 0
        predictor = [0, a, b, (a + b) // 2, _paeth(a, b, c)][kind]
        out.append((x - predictor) % 256)
    return bytes([kind]) + bytes(out)


def png(pixels: list[list[bytes]], kinds: list[int], colour_type: int = 6) -> bytes:
    bpp = len(pixels[0][0])
    rows, above = [], bytes(len(pixels[0]) * bpp)
    for row, kind in zip(pixels, kinds, strict=True):
        line = b"".join(row)
        rows.append(_filtered(line, above, kind, bpp))
        above = line

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", len(pixels[0]), len(pixels), 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def flat(colour: bytes) -> list[list[bytes]]:
    return [[colour] * WIDTH for _ in range(HEIGHT)]


@pytest.mark.parametrize("kind", range(5))
@pytest.mark.parametrize("colour", [b"\xff\xff\xff\xff", b"\x00\x00\x00\xff", b"\x1f\x5f\x3a\xff"])
def test_one_colour_is_read_as_flat_under_every_filter(kind: int, colour: bytes) -> None:
    assert is_one_colour(png(flat(colour), [kind] * HEIGHT))


def test_mixed_filters_and_rgb_are_read_too() -> None:
    assert is_one_colour(png(flat(b"\x10\x80\xf0"), [4, 3, 1, 2], colour_type=2))


@pytest.mark.parametrize("kind", range(5))
@pytest.mark.parametrize(("row", "column"), [(0, 0), (0, WIDTH - 1), (HEIGHT - 1, 2)])
def test_one_different_pixel_anywhere_is_not_flat(kind: int, row: int, column: int) -> None:
    pixels = flat(b"\xff\xff\xff\xff")
    pixels[row][column] = b"\xfe\xff\xff\xff"
    assert not is_one_colour(png(pixels, [kind] * HEIGHT))


def test_what_is_not_a_png_is_not_judged_flat() -> None:
    assert not is_one_colour(b"GIF89a")
