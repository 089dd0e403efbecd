"""The width and height an image file declares, read from its header without decoding it, and
the pixel limit images are held to.

Decoders allocate what the header declares before they find the data missing, so a few bytes
claiming 30000x30000 pixels cost gigabytes. Reading the header first lets `read_image` refuse
such files cheaply. Covered: PNG, JPEG, BMP, TIFF (first page), PNM/PAM/PFM, GIF and WebP; a file
of another format, or whose size cannot be read, is refused rather than decoded without a limit.
The limit is an argument (``max_pixels``, the commands' ``--max_pixels``); `pixel_limit` gives
the default, ``$U2FUSION_MAX_PIXELS`` or `DEFAULT_MAX_PIXELS`.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable

from u2fusion_tf.errors import ImageError, U2FusionError

MAX_PIXELS_ENV = "U2FUSION_MAX_PIXELS"
BYTES_PER_PIXEL = {"fuse": 76, "evaluate": 216}
"""The most memory a command holds per pixel of an RGB pair: the sources, their colour and the
fused image for `fuse`; also the fused image and the metrics for `evaluate` (measured with
tracemalloc, checked by tests/test_headers.py). Fusion in tiles adds a constant 1.8 GB
(TensorFlow and one tile: the peak RSS of fusing 1100x1100 in float32, less its images)."""
DEFAULT_MAX_PIXELS = 1 << 26
"""67 million pixels (8192x8192): `evaluate` then holds up to 14.5 GB (216 B a pixel) and
tiled fusion 6.9 GB (76 B a pixel + 1.8 GB), within the 24 GB of the machine in the README's
Speed section with room for a training run beside them. Twice as many would take `evaluate` to
29 GB."""


def pixel_limit(max_pixels: int | None = None) -> int:
    """The largest image (width x height) to accept: `max_pixels` when given, else
    ``$U2FUSION_MAX_PIXELS``, else `DEFAULT_MAX_PIXELS` (the one place the variable is read)."""
    if max_pixels is not None:
        if max_pixels < 1:
            raise U2FusionError(f"--max_pixels {max_pixels}: expected a positive number of pixels")
        return max_pixels
    value = os.environ.get(MAX_PIXELS_ENV, "")
    if not value:
        return DEFAULT_MAX_PIXELS
    if not value.isdigit() or int(value) == 0:
        raise U2FusionError(f"{MAX_PIXELS_ENV}={value}: expected a positive number of pixels")
    return int(value)


RAISE_THE_LIMIT = f"raise it with --max_pixels or {MAX_PIXELS_ENV}"


def over_the_limit(limit: int) -> str:
    """The end of a refusal by the pixel limit: the limit, and how to raise it."""
    return f"more than the limit of {limit} ({RAISE_THE_LIMIT})"


def require_within_limit(path: str, width: int, height: int, limit: int) -> None:
    """Refuses a file that declares more than `limit` pixels, before it is read or decoded."""
    if width * height > limit:
        raise ImageError(path, f"declares {width}x{height} pixels, {over_the_limit(limit)}")


FORMATS = "PNG, JPEG, BMP, TIFF, PNM/PAM/PFM, GIF or WebP"
"""The formats whose size is read from the header (and so the formats images are read in)."""
SIGNATURE_BYTES = 12
"""Enough leading bytes to tell every covered format (WebP's is the longest)."""
_PNM_TOKEN = re.compile(rb"(?:\s|#[^\n]*\n?)*(\d+)")
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD9)}
_JPEG_START_OF_FRAME = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_START_OF_SCAN = 0xDA


def declared_size(data: bytes | bytearray) -> tuple[int, int] | None:
    """(width, height) from the header of an encoded image, or None when the format is not
    covered or the header is cut short or damaged."""
    reader = _reader(data)
    try:
        return reader(data) if reader else None
    except (struct.error, IndexError, ValueError):
        return None


def is_covered(data: bytes | bytearray) -> bool:
    """Whether `data` (at least `SIGNATURE_BYTES` of it) starts like a format whose size this
    module reads."""
    return _reader(data) is not None


def _reader(data: bytes | bytearray) -> Callable[[bytes | bytearray], tuple | None] | None:
    return next((reader for signatures, reader in _READERS if data.startswith(signatures)), None)


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


def _jpeg(data: bytes | bytearray) -> tuple[int, int] | None:
    """Walks the markers as libjpeg does, skipping stray bytes between them (it warns and reads
    on), so that the size found is the one the decoder will allocate."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:  # stray bytes: on to the next 0xFF
            position = data.find(b"\xff", position)
            if position < 0:
                return None
            continue
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_STANDALONE or marker == 0x00:  # 0xFF00: a stuffed zero, skipped
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


def _webp(data: bytes | bytearray) -> tuple[int, int] | None:
    if data[8:12] != b"WEBP":
        return None
    kind = bytes(data[12:16])
    if kind == b"VP8X":  # extended: the canvas, 24-bit sides minus one
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if kind == b"VP8L":  # lossless: 14-bit sides minus one after the signature byte 0x2f
        (bits,) = struct.unpack("<I", data[21:25])
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if kind == b"VP8 ":  # lossy: 14-bit sides after the frame tag and start code
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


_READERS = (
    (b"\x89PNG\r\n\x1a\n", _png),
    ((b"GIF87a", b"GIF89a"), _gif),
    (b"BM", _bmp),
    ((b"II*\x00", b"MM\x00*"), _tiff),
    ((*(b"P%d" % k for k in range(1, 8)), b"Pf", b"PF"), _pnm),
    (b"\xff\xd8", _jpeg),
    (b"RIFF", _webp),
)
"""Each format's leading bytes and its header reader."""
