"""The width and height an image file declares, read from its header without decoding it.

Decoders allocate what the header declares before they find the data missing, so a few bytes
claiming 30000x30000 pixels cost gigabytes. Reading the header first lets `read_image` refuse
such files cheaply. Covered: PNG, JPEG, BMP, TIFF (first page), PNM/PAM/PFM and GIF. Other
formats OpenCV reads (WebP, whose sides stop at 16383; JPEG 2000, OpenEXR, Radiance HDR, Sun
raster) report None and are left to OpenCV's own limit of 2^30 pixels. The limit images are
held to is `max_pixels()`.
"""

from __future__ import annotations

import os
import re
import struct

from u2fusion_tf.errors import U2FusionError

MAX_PIXELS_ENV = "U2FUSION_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 1 << 28
"""268 million pixels (16384x16384): about 3 GB as float32 RGB, the most one pair of sources can
take on a machine with 8 GB and still be fused in tiles."""


def max_pixels() -> int:
    """The largest image (width x height) `read_image` accepts: ``$U2FUSION_MAX_PIXELS`` (which
    the commands' ``--max_pixels`` sets), or `DEFAULT_MAX_PIXELS`."""
    value = os.environ.get(MAX_PIXELS_ENV, "")
    if not value:
        return DEFAULT_MAX_PIXELS
    if not value.isdigit() or int(value) == 0:
        raise U2FusionError(f"{MAX_PIXELS_ENV}={value}: expected a positive number of pixels")
    return int(value)


_PNM_TOKEN = re.compile(rb"(?:\s|#[^\n]*\n?)*(\d+)")
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD9)}
_JPEG_START_OF_FRAME = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_START_OF_SCAN = 0xDA


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of an encoded image, or None when the format is not
    covered or the header is cut short."""
    try:
        for signatures, reader in _READERS:
            if data.startswith(signatures):
                return reader(data)
    except (struct.error, IndexError, ValueError):
        return None
    return None


def _png(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", data[16:24])  # IHDR, the first chunk


def _gif(data: bytes) -> tuple[int, int]:
    return struct.unpack("<HH", data[6:10])  # the logical screen


def _bmp(data: bytes) -> tuple[int, int]:
    (header_size,) = struct.unpack("<I", data[14:18])
    if header_size == 12:  # OS/2 core header: unsigned 16-bit sides
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)  # a negative height means top-down rows


def _tiff(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[offset : offset + 2])
    sides = {}
    for entry in range(offset + 2, offset + 2 + 12 * count, 12):
        tag, kind = struct.unpack(order + "HH", data[entry : entry + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
            value_format = order + ("H" if kind == 3 else "I")
            size = struct.calcsize(value_format)
            (sides[tag],) = struct.unpack(value_format, data[entry + 8 : entry + 8 + size])
    return (sides[256], sides[257]) if len(sides) == 2 else None


def _pnm(data: bytes) -> tuple[int, int] | None:
    if data[:2] == b"P7":  # PAM: "WIDTH w" and "HEIGHT h" lines
        header = data[: data.find(b"ENDHDR")]
        width = re.search(rb"\bWIDTH\s+(\d+)", header)
        height = re.search(rb"\bHEIGHT\s+(\d+)", header)
        return (int(width[1]), int(height[1])) if width and height else None
    width = _PNM_TOKEN.match(data, 2)
    height = width and _PNM_TOKEN.match(data, width.end())
    return (int(width[1]), int(height[1])) if height else None


def _jpeg(data: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        if marker == _JPEG_START_OF_SCAN:
            return None
        if marker in _JPEG_START_OF_FRAME:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return (width, height) if height else None  # height 0: given later (DNL)
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        position += 2 + length
    return None


_READERS = (
    (b"\x89PNG\r\n\x1a\n", _png),
    ((b"GIF87a", b"GIF89a"), _gif),
    (b"BM", _bmp),
    ((b"II*\x00", b"MM\x00*"), _tiff),
    ((*(b"P%d" % k for k in range(1, 8)), b"Pf", b"PF"), _pnm),
    (b"\xff\xd8", _jpeg),
)
"""Each format's leading bytes and its header reader."""
