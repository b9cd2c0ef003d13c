"""Whether a PNG screenshot is one flat colour, read from its filtered rows without an image
library: each of PNG's five row filters turns a one-colour image into rows that can be written
down from that colour alone, so comparing bytes decides it exactly."""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
BYTES_PER_PIXEL = {2: 3, 6: 4}  # 8-bit RGB and RGBA, what Chromium writes


def is_one_colour(png: bytes) -> bool:
    """True when every pixel is the same; False for any other image, and for a PNG of a kind
    Chromium does not write (it is then not judged blank)."""
    header, data = _chunks(png)
    if header is None:
        return False
    width, height, depth, colour_type, _compression, _filter, interlace = struct.unpack(
        ">IIBBBBB", header
    )
    bpp = BYTES_PER_PIXEL.get(colour_type)
    if depth != 8 or bpp is None or interlace != 0 or width == 0:
        return False
    raw = zlib.decompress(data)
    stride = 1 + width * bpp
    if len(raw) != stride * height:
        return False
    colour = raw[1 : 1 + bpp]  # the first pixel, whichever filter its row uses
    for row in range(height):
        line = raw[row * stride : (row + 1) * stride]
        if line[1:] != _flat_row(line[0], colour, width, first_row=row == 0):
            return False
    return True


def _flat_row(kind: int, colour: bytes, width: int, *, first_row: bool) -> bytes | None:
    """The filtered bytes of a row of `colour` under filter `kind` (the row above is all zeros
    for the first row, all `colour` after it); None for an unknown filter."""
    rest = width - 1
    zeros = bytes(len(colour))
    half = bytes((c - c // 2) % 256 for c in colour)  # c - floor((0 + c) / 2)
    if kind == 0:  # None
        return colour * width
    if kind == 1:  # Sub
        return colour + zeros * rest
    if kind == 2:  # Up
        return colour * width if first_row else zeros * width
    if kind == 3:  # Average
        return colour + half * rest if first_row else half + zeros * rest
    if kind == 4:  # Paeth
        return colour + zeros * rest if first_row else zeros * width
    return None


def _chunks(png: bytes) -> tuple[bytes | None, bytes]:
    """The IHDR chunk's data and the IDAT chunks' data joined."""
    if not png.startswith(SIGNATURE):
        return None, b""
    header, data, at = None, bytearray(), len(SIGNATURE)
    while at + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[at : at + 8])
        body = png[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            data += body
        elif kind == b"IEND":
            break
        at += 12 + length
    return header, bytes(data)
