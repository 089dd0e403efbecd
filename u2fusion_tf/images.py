"""Image files and colour, as the authors' test program handles them.

* Reading: 8- or 16-bit, gray, RGB or RGBA (alpha dropped), scaled to float32 in [0, 1]. An
  image declaring more than the pixel limit (`headers.pixel_limit`) is refused from its header,
  before decoding, and no more of a file is read than an image within the limit can take.
* Colour: the network sees only luminance. RGB is split into Y, Cb, Cr (JPEG/BT.601 full range,
  chroma centred on 0.5); the fused Y is recombined with the sources' chroma (paper Eq. 10).
* Writing: 8-bit PNG/JPEG/BMP/TIFF, or ``.npy`` for the raw float32 fused Y; always whole or
  not at all (`u2fusion_tf.files`). An output scaling (`OUTPUT_SCALINGS`) says whether the
  8-bit image is the network output as it is or stretched as the authors' test program saves it.
"""

from __future__ import annotations

import io
import os
import select
import stat
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from u2fusion_tf.errors import FileError, ImageError
from u2fusion_tf.files import check_writable, write_atomically
from u2fusion_tf.headers import (
    FORMATS,
    RAISE_THE_LIMIT,
    SIGNATURE_BYTES,
    declared_size,
    is_covered,
    pixel_limit,
    require_within_limit,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
"""What the fuse tool writes as 8-bit images (and what it looks for when pairing folders)."""
RAW_SUFFIX = ".npy"
CHROMA_CENTRE = 0.5
"""Cb and Cr of a gray pixel (128/255 in the authors' 8-bit terms is taken as 0.5)."""
OUTPUT_SCALINGS = ("none", "authors")
"""How a fused image becomes 8 bits. ``none``: the network output as it is (clipped to [0, 1]).
``authors``: as the authors' test program saves it, ``scipy.misc.toimage(output, cmin=0,
cmax=output.max())``, which stretches each image by 1 / its maximum (a factor of 1.1-1.55 on many
of their test pairs); the paper's tables were computed on images saved this way."""

MAX_BYTES_PER_PIXEL = 8
"""The most an accepted image file spends on a pixel: 16-bit RGBA, uncompressed."""
METADATA_BYTES = 16 << 20
"""What a file may hold besides its pixels (headers, colour profiles, thumbnails)."""

RGB_TO_YCBCR = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.1687, -0.3313, 0.5],
        [0.5, -0.4187, -0.0813],
    ]
)
"""Rows give Y, Cb - 0.5, Cr - 0.5 from R, G, B."""
YCBCR_TO_RGB = np.array(
    [
        [1.0, 0.0, 1.402],
        [1.0, -0.34414, -0.71414],
        [1.0, 1.772, 0.0],
    ]
)
"""Rows give R, G, B from Y, Cb - 0.5, Cr - 0.5 (the inverse of `RGB_TO_YCBCR`)."""


PIPE_WAIT_SECONDS = 0.2
"""How long a read of a pipe waits for data before Python gets to handle a Ctrl-C."""
CHUNK_BYTES = 1 << 20


def read_chunks(path: str) -> Iterator[bytes]:
    """The bytes of a file, or of a pipe or device (np.fromfile cannot read one), in pieces. A
    pipe is read with `select`, returning to Python between pieces: a Ctrl-C that lands just
    before a blocking read of a silent pipe would otherwise go unhandled until data comes."""
    with open(path, "rb", buffering=0) as stream:
        regular = stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
        while True:
            if not regular and not select.select([stream], [], [], PIPE_WAIT_SECONDS)[0]:
                continue
            chunk = stream.read(CHUNK_BYTES)
            if not chunk:
                return
            yield chunk


def read_encoded(path: str, max_pixels: int | None = None) -> tuple[bytearray, tuple[int, int]]:
    """The bytes of an image file whose header declares at most `max_pixels` pixels (default
    `pixel_limit`), and its (width, height). No more is read than an image within the limit can
    take, so that an endless stream (a pipe, /dev/zero) ends in an error, not in exhausted memory.

    Raises `ImageError` naming the file when it cannot be read, is not of a covered format
    (`u2fusion_tf.headers`), declares no readable size or too many pixels, or is too long.
    """
    limit = pixel_limit(max_pixels)
    most = MAX_BYTES_PER_PIXEL * limit + METADATA_BYTES
    data = bytearray()
    try:
        for chunk in read_chunks(path):
            first_look = len(data) < SIGNATURE_BYTES
            data += chunk
            if first_look and len(data) >= SIGNATURE_BYTES:  # refused early where it can be
                if not is_covered(data):
                    break
                size = declared_size(data)  # a header cut short never reads too large
                if size is not None:
                    require_within_limit(path, *size, limit)
            if len(data) > most:
                raise ImageError(
                    path,
                    f"holds more than {most} bytes, the most an image of up to {limit} pixels "
                    f"takes ({RAISE_THE_LIMIT})",
                )
    except OSError as error:
        raise ImageError(path, f"cannot be read ({error.strerror or error})") from error
    if not is_covered(data):
        raise ImageError(path, f"is not an image of a format read here ({FORMATS})")
    size = declared_size(data)
    if size is None:
        raise ImageError(path, "is not an image that can be read safely (no size in its header)")
    require_within_limit(path, *size, limit)
    return data, size


def read_image(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """Reads an image as float32 in [0, 1]: (H, W) for gray, (H, W, 3) RGB for colour.

    Raises `ImageError` naming the file for a missing, unreadable or undecodable file, and for
    one whose header declares more than `max_pixels` pixels (default `pixel_limit`).
    """
    path = str(path)
    if not os.path.exists(path):
        raise ImageError(path, "no such file")
    if os.path.isdir(path):
        raise ImageError(path, "is a folder, not an image")
    encoded = np.frombuffer(read_encoded(path, max_pixels)[0], np.uint8)
    try:
        pixels = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:  # e.g. a declared size above OpenCV's own limit
        raise ImageError(path, f"is not an image OpenCV can decode ({error.err})") from error
    if pixels is None:
        raise ImageError(path, "is not an image OpenCV can decode")
    if pixels.dtype == np.uint8:
        image = pixels.astype(np.float32) / 255.0
    elif pixels.dtype == np.uint16:
        image = pixels.astype(np.float32) / 65535.0
    else:
        raise ImageError(
            path, f"has {pixels.dtype} pixels; only 8- and 16-bit images are supported"
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        image = np.ascontiguousarray(image[:, :, 2::-1])  # BGR(A) -> RGB, alpha dropped
    elif image.ndim != 2:
        raise ImageError(path, f"has an unsupported layout {pixels.shape}")
    return image


def require_same_size(
    path: str | os.PathLike,
    image: np.ndarray,
    reference_path: str | os.PathLike,
    reference: np.ndarray,
) -> None:
    """Raises `ImageError` naming both files and sizes when `image` and `reference` differ."""
    if image.shape[:2] != reference.shape[:2]:
        raise ImageError(
            str(path),
            f"is {image.shape[0]}x{image.shape[1]} but {reference_path} is "
            f"{reference.shape[0]}x{reference.shape[1]}; sources must be the same size",
        )


def rgb_to_ycbcr(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Splits an (H, W, 3) RGB image in [0, 1] into Y, Cb, Cr (each (H, W), chroma centred on
    0.5). Y is a copy, not a view: a view would hold all three channels in memory."""
    ycbcr = np.asarray(rgb, np.float32) @ RGB_TO_YCBCR.T.astype(np.float32)
    return ycbcr[..., 0].copy(), ycbcr[..., 1] + CHROMA_CENTRE, ycbcr[..., 2] + CHROMA_CENTRE


def ycbcr_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """The inverse of `rgb_to_ycbcr` (not clipped; writing clips)."""
    (_, _, r_cr), (_, g_cb, g_cr), (_, b_cb, _) = YCBCR_TO_RGB.tolist()  # weak Python floats
    cb, cr = cb - CHROMA_CENTRE, cr - CHROMA_CENTRE
    r = y + r_cr * cr
    g = y + g_cb * cb + g_cr * cr
    b = y + b_cb * cb
    return np.stack([r, g, b], axis=-1).astype(np.float32, copy=False)


def to_luminance(image: np.ndarray) -> np.ndarray:
    """Y of an RGB image, or the image itself if it is already gray."""
    return rgb_to_ycbcr(image)[0] if image.ndim == 3 else image.astype(np.float32)


def fuse_chroma(c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """Paper Eq. 10: each chroma channel weighted by its distance from gray (t = 0.5).

    Cf = (C1 |C1 - t| + C2 |C2 - t|) / (|C1 - t| + |C2 - t|), and Cf = t where both equal t.
    """
    d1 = np.abs(c1 - CHROMA_CENTRE)
    d2 = np.abs(c2 - CHROMA_CENTRE)
    total = d1 + d2
    with np.errstate(invalid="ignore", divide="ignore"):
        fused = (c1 * d1 + c2 * d2) / total
    return np.where(total == 0, CHROMA_CENTRE, fused).astype(np.float32, copy=False)


def scale_output(image: np.ndarray, scaling: str) -> np.ndarray:
    """A fused image (gray or RGB, about [0, 1]) with one of `OUTPUT_SCALINGS` applied.

    ``authors`` returns the 8-bit levels of `authors_8bit` divided by 255, which `write_image`
    writes back as exactly those levels.
    """
    if scaling == "none":
        return image
    if scaling == "authors":
        return authors_8bit(image).astype(np.float32) / 255.0
    raise ValueError(f"unknown output scaling {scaling!r}; expected one of {OUTPUT_SCALINGS}")


def authors_8bit(image: np.ndarray) -> np.ndarray:
    """The uint8 image ``scipy.misc.toimage(image, cmin=0, cmax=image.max())`` holds.

    SciPy's ``bytescale`` (SciPy <= 1.1, run with NumPy 1 by the authors) computes
    ``(data - cmin) * (255 / (cmax - cmin))`` in the array's own precision (NumPy 1 cast the
    float64 scale to a float32 array's type), clips to [0, 255], adds 0.5 and truncates: halves
    round up, not to even. A flat black image (max 0) keeps a scale of 255, as bytescale's.
    """
    data = np.asarray(image)
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float64)
    cmax = float(data.max())
    kind = data.dtype.type
    scale = kind(255.0 / cmax) if cmax > 0 else kind(255.0)
    return (np.clip(data * scale, 0, 255) + kind(0.5)).astype(np.uint8)


def check_output(path: str | os.PathLike, scaling: str = "none") -> None:
    """Fails early (before any fusion work) when `path` has an unsupported suffix, cannot take
    the output scaling (`OUTPUT_SCALINGS`) or its folder cannot be written."""
    path = str(path)
    suffix = Path(path).suffix.lower()
    if suffix not in (*IMAGE_SUFFIXES, RAW_SUFFIX):
        supported = ", ".join((*IMAGE_SUFFIXES, RAW_SUFFIX))
        raise ImageError(
            path, f"unsupported output type {suffix or '(none)'}; use one of {supported}"
        )
    if scaling != "none" and suffix == RAW_SUFFIX:
        raise ImageError(
            path,
            f"--output_scaling {scaling} scales 8-bit images; {RAW_SUFFIX} holds the raw fused Y",
        )
    try:
        check_writable(path)
    except FileError as error:
        raise ImageError(error.path, error.problem) from error


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Writes an image in [0, 1] as 8 bits (clipped, rounded), or raw float32 for ``.npy``.

    The file appears only when complete: the data goes to a temporary file that is renamed.
    """
    path = str(path)
    check_output(path)
    suffix = Path(path).suffix.lower()
    if suffix == RAW_SUFFIX:
        payload = _npy_bytes(np.asarray(image, dtype=np.float32))
    else:
        levels = np.clip(image, 0.0, 1.0)  # one temporary, scaled and rounded in place
        levels *= 255.0
        pixels = np.round(levels, out=levels).astype(np.uint8)
        if pixels.ndim == 3:
            pixels = pixels[:, :, ::-1]  # RGB -> BGR for OpenCV
        ok, encoded = cv2.imencode(suffix, pixels)
        if not ok:
            raise ImageError(path, "OpenCV could not encode the image")
        payload = encoded.tobytes()
    try:
        write_atomically(path, payload)
    except FileError as error:
        raise ImageError(error.path, error.problem) from error


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
