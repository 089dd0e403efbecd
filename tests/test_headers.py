"""Declared image sizes and the pixel limit: huge headers are refused before decoding."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from u2fusion_tf.errors import ImageError, U2FusionError
from u2fusion_tf.headers import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, declared_size
from u2fusion_tf.images import read_image

IMAGE = np.random.default_rng(2).integers(0, 256, (30, 41, 3), dtype=np.uint8)


def png_declaring(width: int, height: int) -> bytes:
    """A gray PNG whose header declares width x height but whose data is one row: tiny on disk,
    gigabytes once a decoder allocates what it declares."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 9))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "suffix", [".png", ".jpg", ".bmp", ".tif", ".ppm", ".pgm", ".pbm", ".pam", ".pfm", ".gif"]
)
def test_declared_size_of_every_covered_format(suffix):
    image = IMAGE[..., 0] if suffix in (".pgm", ".pbm") else IMAGE
    image = image.astype(np.float32) if suffix == ".pfm" else image
    ok, encoded = cv2.imencode(suffix, image)
    assert ok
    assert declared_size(encoded.tobytes()) == (41, 30)
    assert declared_size(encoded.tobytes()[:5]) is None  # cut short


def test_plain_pnm_with_comments_and_unknown_formats():
    assert declared_size(b"P2\n# made by hand\n 7 # width\n5\n255\n") == (7, 5)
    assert declared_size(b"hello, not an image") is None
    ok, encoded = cv2.imencode(".webp", IMAGE)
    assert ok and declared_size(encoded.tobytes()) is None  # left to OpenCV's own limit


@pytest.mark.parametrize(
    ("name", "payload", "declared"),
    [
        ("huge.png", png_declaring(40000, 30000), "40000x30000"),  # above OpenCV's 2^30
        ("huge.pgm", b"P5\n36906 35676\n255\n" + bytes(64), "36906x35676"),
        ("big.png", png_declaring(30000, 30000), "30000x30000"),  # 8 GB were spent on this
    ],
)
def test_huge_declared_size_is_refused_before_decoding(tmp_path, name, payload, declared):
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(ImageError, match=f"declares {declared} pixels, more than the limit"):
        read_image(path)


def test_the_limit_is_set_by_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "small.jpg"
    cv2.imwrite(str(path), IMAGE)
    assert DEFAULT_MAX_PIXELS == 1 << 28
    monkeypatch.setenv(MAX_PIXELS_ENV, "1229")
    with pytest.raises(
        ImageError, match=f"41x30 pixels, more than the limit of 1229 .*{MAX_PIXELS_ENV}"
    ):
        read_image(path)
    monkeypatch.setenv(MAX_PIXELS_ENV, "1230")
    assert read_image(path).shape == (30, 41, 3)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(U2FusionError, match=f"{MAX_PIXELS_ENV}=lots: expected a positive"):
        read_image(path)
