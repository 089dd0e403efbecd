"""Declared image sizes and the pixel limit: huge headers are refused before decoding, files
whose size cannot be read are refused rather than decoded, and no more of a file is read than
the limit allows."""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import threading
import tracemalloc
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from u2fusion_tf.errors import ImageError, U2FusionError
from u2fusion_tf.headers import (
    BYTES_PER_PIXEL,
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_ENV,
    declared_size,
    pixel_limit,
)
from u2fusion_tf.images import METADATA_BYTES, read_image

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
    ("suffix", "options"),
    [
        *((s, []) for s in (".png", ".jpg", ".bmp", ".tif", ".ppm", ".pgm", ".pbm", ".pam")),
        *((s, []) for s in (".pfm", ".gif", ".webp")),  # WebP: lossy (VP8)
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),  # lossless (VP8L)
    ],
)
def test_declared_size_of_every_covered_format(suffix, options):
    image = IMAGE[..., 0] if suffix in (".pgm", ".pbm") else IMAGE
    image = image.astype(np.float32) if suffix == ".pfm" else image
    ok, encoded = cv2.imencode(suffix, image, options)
    assert ok
    assert declared_size(encoded.tobytes()) == (41, 30)
    assert declared_size(encoded.tobytes()[:5]) is None  # cut short


def test_plain_pnm_with_comments_extended_webp_and_unknown_formats():
    assert declared_size(b"P2\n# made by hand\n 7 # width\n5\n255\n") == (7, 5)
    vp8x = b"RIFF\0\0\0\0WEBPVP8X" + bytes(8) + (19999).to_bytes(3, "little") * 2
    assert declared_size(vp8x) == (20000, 20000)  # the canvas of an extended (animated) WebP
    assert declared_size(b"hello, not an image") is None


def jpeg_with(image: np.ndarray, before_frame: bytes) -> bytes:
    """`image` as JPEG with `before_frame` inserted just before its start-of-frame marker."""
    encoded = cv2.imencode(".jpg", image)[1].tobytes()
    frame = encoded.index(b"\xff\xc0")
    return encoded[:frame] + before_frame + encoded[frame:]


def app_segments(total: int) -> bytes:
    """APP15 segments of `total` bytes or more (metadata before the frame)."""
    segment = b"\xff\xef" + struct.pack(">H", 65535) + bytes(65533)
    return segment * (total // len(segment) + 1)


@pytest.mark.parametrize(
    "before_frame",
    [b"\x00", b"junk", app_segments(1 << 20)],
    ids=["a stray byte", "stray bytes", "over 1 MiB of metadata"],
)
def test_the_jpeg_size_is_found_where_the_decoder_finds_it(tmp_path, before_frame):
    """libjpeg skips stray bytes before a marker (with a warning) and reads any amount of
    metadata, so the size it allocates must be found there too: else the limit is bypassed."""
    path = tmp_path / "odd.jpg"
    path.write_bytes(jpeg_with(IMAGE, before_frame))
    assert declared_size(path.read_bytes()) == (41, 30)
    assert read_image(path).shape == (30, 41, 3)  # OpenCV decodes it
    with pytest.raises(ImageError, match="declares 41x30 pixels, more than the limit of 1229"):
        read_image(path, max_pixels=1229)
    huge = bytearray(path.read_bytes())
    frame = huge.index(b"\xff\xc0")
    huge[frame + 5 : frame + 9] = struct.pack(">HH", 30000, 30000)  # 8 GB spent on this once
    path.write_bytes(huge)
    with pytest.raises(ImageError, match="declares 30000x30000 pixels, more than the limit"):
        read_image(path)


NO_SIZE = r"is not an image that can be read safely \(no size in its header\)"


@pytest.mark.parametrize(
    ("suffix", "payload", "message"),
    [
        (".jp2", None, "is not an image of a format read here"),
        (".ras", None, "is not an image of a format read here"),
        (".jpg", b"\xff\xd8\xff\xda\x00\x02", NO_SIZE),  # a scan before the frame
        (".png", b"\x89PNG\r\n\x1a\n\x00", NO_SIZE),  # cut short
        (".png", b"", "is not an image of a format read here"),
    ],
)
def test_a_file_whose_size_cannot_be_read_is_refused_not_decoded(
    tmp_path, suffix, payload, message
):
    """JPEG 2000 and Sun raster are decoded by OpenCV, but without a size read first they
    would be decoded without the pixel limit."""
    path = tmp_path / f"image{suffix}"
    if payload is None:
        image = np.tile(IMAGE, (4, 4, 1))  # OpenJPEG needs more than 32x32 pixels
        assert cv2.imwrite(str(path), image) and cv2.imread(str(path)) is not None
    else:
        path.write_bytes(payload)
    with pytest.raises(ImageError, match=f"{path.name}: {message}"):
        read_image(path)


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


def test_the_limit_is_an_argument_with_the_environment_as_its_default(tmp_path, monkeypatch):
    path = tmp_path / "small.jpg"
    cv2.imwrite(str(path), IMAGE)
    monkeypatch.setenv(MAX_PIXELS_ENV, "1229")
    with pytest.raises(
        ImageError, match=f"41x30 pixels, more than the limit of 1229 .*{MAX_PIXELS_ENV}"
    ):
        read_image(path)
    assert read_image(path, max_pixels=1230).shape == (30, 41, 3)  # the argument wins
    monkeypatch.setenv(MAX_PIXELS_ENV, "1230")
    assert read_image(path).shape == (30, 41, 3)
    assert os.environ[MAX_PIXELS_ENV] == "1230" and pixel_limit() == 1230
    with pytest.raises(ImageError, match="more than the limit of 1229"):
        read_image(path, max_pixels=1229)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(U2FusionError, match=f"{MAX_PIXELS_ENV}=lots: expected a positive"):
        read_image(path)
    with pytest.raises(U2FusionError, match="--max_pixels 0: expected a positive"):
        read_image(path, max_pixels=0)


@pytest.mark.parametrize(
    ("width", "height", "max_pixels", "message", "most_sent"),
    [
        (4, 4, 16, r"holds more than \d+ bytes, the most an", METADATA_BYTES + (4 << 20)),
        (40000, 30000, None, "declares 40000x30000 pixels, more than the limit", 4 << 20),
    ],
)
def test_a_stream_is_read_no_further_than_the_limit_allows(
    tmp_path, width, height, max_pixels, message, most_sent
):
    """A pipe that starts like a PNG and then sends 64 MiB is refused once it has sent more than
    any image within the limit takes, or at once when its header declares too many pixels;
    reading it whole would not end for an endless stream."""
    fifo = tmp_path / "stream.png"
    os.mkfifo(fifo)
    sent = []

    def write():
        with open(fifo, "wb") as stream:
            try:
                stream.write(png_declaring(width, height)[:33])  # signature and header
                for _ in range(64):
                    stream.write(bytes(1 << 20))
                    sent.append(1 << 20)
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=write)
    writer.start()
    with pytest.raises(ImageError, match=f"stream.png: {message}"):
        read_image(fifo, max_pixels=max_pixels)
    writer.join()
    assert sum(sent) < most_sent  # the reading stopped early


def test_dev_zero_is_refused_at_once():
    """``--inputs /dev/zero,...`` once read without end; here a child limited to 2 GB of address
    space must refuse it with one line."""
    code = (
        "from u2fusion_tf.images import read_image\n"
        "from u2fusion_tf.errors import ImageError\n"
        "try:\n    read_image('/dev/zero')\nexcept ImageError as error:\n    print(error)\n"
    )

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_memory,
    )
    assert result.stdout.startswith("/dev/zero: is not an image of a format read here"), result


def traced_peak(work) -> int:
    """The most memory (bytes, as tracemalloc sees NumPy's and OpenCV's arrays) `work` holds."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class AveragingNetwork:
    """Stands in for the network, whose tiles take the same memory at any image size."""

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return batch.mean(axis=-1, keepdims=True)


def test_fusing_and_scoring_hold_no_more_a_pixel_than_the_default_limit_assumes(tmp_path):
    """The default pixel limit is derived from these figures (`DEFAULT_MAX_PIXELS`)."""
    from u2fusion_tf.catalogue import PairSet
    from u2fusion_tf.fusion_files import fuse_files
    from u2fusion_tf.scoring import score_folders

    side = 384
    small = np.random.default_rng(5).integers(0, 256, (2, side // 8, side // 8, 3), np.uint8)
    for folder, image in zip("ab", small, strict=True):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "x.png"), cv2.resize(image, (side, side)))
    sources = [tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"]
    (tmp_path / "fused").mkdir()
    output = tmp_path / "fused" / "x.png"
    fusing = traced_peak(lambda: fuse_files(sources, output, AveragingNetwork()))
    pair = PairSet.of(tmp_path / "a", tmp_path / "b")
    scoring = traced_peak(
        lambda: score_folders(pair, [str(tmp_path / "fused")], log=lambda _: None)
    )
    assert fusing / side**2 <= BYTES_PER_PIXEL["fuse"]
    assert scoring / side**2 <= BYTES_PER_PIXEL["evaluate"]
    assert DEFAULT_MAX_PIXELS * max(BYTES_PER_PIXEL.values()) < 16e9  # of the 24 GB machine


def test_the_docs_state_the_default_limit_and_its_figures():
    errors = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
    text = errors.read_text(encoding="utf-8")
    limit = text[text.index("**Huge images are refused") :][:1500]
    assert f"2^{DEFAULT_MAX_PIXELS.bit_length() - 1} pixels ({DEFAULT_MAX_PIXELS:,}" in limit
    assert f"{BYTES_PER_PIXEL['fuse']} bytes a pixel to fuse" in limit
    assert f"and {BYTES_PER_PIXEL['evaluate']} to score" in limit
