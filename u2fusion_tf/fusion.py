"""Fusion as arrays: the luminance fusion by the network (`fuse_y`, in tiles and batches), the
colour handling around it, and the size limits; used by the fuse command (files, folders), video
fusion and the exported models' checks.

The network fuses luminance only (paper Sec. 3.4). Colour follows the authors' test program:
one RGB source lends its Cb/Cr to the result; two RGB sources have each chroma channel fused by
Eq. 10; two gray sources give a gray result. More than two sources are fused in sequence:
the first two, then that result with the third, and so on.

Large images are fused in overlapping tiles. Ten 3x3 layers mean an output pixel depends only on
inputs within `model.RECEPTIVE_RADIUS` pixels, so tiles that overlap by that margin give the
same result as fusing the whole image at once (up to float rounding).

Importing this module does not import TensorFlow: it needs only a generator's ``infer``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from u2fusion_tf.images import fuse_chroma, rgb_to_ycbcr, scale_output, ycbcr_to_rgb

MIN_SIDE = 2
"""Reflection padding needs at least two pixels along each side."""
AUTO_TILE = 512
"""Tile side used when an image is larger than `MAX_WHOLE_PIXELS` and no tile size is given."""
MAX_WHOLE_PIXELS = 1024 * 1024
"""Largest image fused in one piece by default: the forward pass peaks at about 4.5 KB of
memory a pixel (4.8 GB measured for 1024x1024, 17 GB for 2048x2048)."""


class Generator(Protocol):
    """What fusion needs of a generator: `model.U2FusionNet`, or `export.TFLiteFusion`."""

    def infer(self, sources: np.ndarray) -> np.ndarray:
        """(N, H, W, 2) sources in [0, 1] -> (N, H, W, 1) fused Y."""


def fuse_y(y1: np.ndarray, y2: np.ndarray, model: Generator, tile: int = 0) -> np.ndarray:
    """Fuses two (H, W) luminance images in [0, 1], or two batches (N, H, W) of them; returns
    the float32 fused Y of the same shape.

    `tile` > 0 fuses in tiles of that side (plus a `RECEPTIVE_RADIUS` margin); 0 chooses:
    whole images while the batch holds at most `MAX_WHOLE_PIXELS`, else tiles of `AUTO_TILE`.
    `model` is a `U2FusionNet` or anything with its ``infer`` (e.g. `export.TFLiteFusion`).
    """
    if y1.shape != y2.shape or y1.ndim not in (2, 3):
        raise ValueError(
            f"expected two (H, W) or (N, H, W) images of one size, got {y1.shape} and {y2.shape}"
        )
    if min(y1.shape[-2:]) < MIN_SIDE:
        raise ValueError(f"images must be at least {MIN_SIDE}x{MIN_SIDE}, got {y1.shape}")
    sources = np.stack([y1, y2], axis=-1).astype(np.float32)
    height, width = y1.shape[-2:]
    if tile <= 0:
        tile = 0 if y1.size <= MAX_WHOLE_PIXELS else AUTO_TILE
    if tile == 0 or (height <= tile and width <= tile):
        return _fuse_window(model, sources)
    from u2fusion_tf.model import RECEPTIVE_RADIUS  # tiles' margin; imports TensorFlow

    fused = np.empty(y1.shape, np.float32)
    margin = RECEPTIVE_RADIUS
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            y0, x0 = max(0, top - margin), max(0, left - margin)
            window = _fuse_window(
                model,
                sources[..., y0 : min(height, bottom + margin), x0 : min(width, right + margin), :],
            )
            fused[..., top:bottom, left:right] = window[
                ..., top - y0 : bottom - y0, left - x0 : right - x0
            ]
    return fused


def _fuse_window(model: Generator, sources: np.ndarray) -> np.ndarray:
    """(H, W, 2) or (N, H, W, 2) sources -> (H, W) or (N, H, W) fused Y, in one pass."""
    batch = sources if sources.ndim == 4 else sources[np.newaxis]
    fused = np.asarray(model.infer(batch))[..., 0]
    return fused if sources.ndim == 4 else fused[0]


@dataclass
class YCbCr:
    """An image as the fusion sees it: luminance, and chroma (Cb, Cr) when it has colour."""

    y: np.ndarray
    chroma: tuple[np.ndarray, np.ndarray] | None
    chroma_fused: bool = False
    """Whether the chroma came from two colour sources (Eq. 10)."""

    @classmethod
    def of(cls, image: np.ndarray) -> YCbCr:
        if image.ndim == 3:
            y, cb, cr = rgb_to_ycbcr(image)
            return cls(y, (cb, cr))
        return cls(image.astype(np.float32), None)

    def to_image(self) -> np.ndarray:
        return self.y if self.chroma is None else ycbcr_to_rgb(self.y, *self.chroma)


def fuse_two(
    first: YCbCr, second: YCbCr, fuse_luminance: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> YCbCr:
    """Fuses two images (or two batches of frames) with any luminance fusion, handling colour
    as described above."""
    if first.chroma is None or second.chroma is None:
        return YCbCr(fuse_luminance(first.y, second.y), first.chroma or second.chroma)
    chroma = tuple(fuse_chroma(c1, c2) for c1, c2 in zip(first.chroma, second.chroma, strict=True))
    return YCbCr(fuse_luminance(first.y, second.y), chroma, chroma_fused=True)


def fuse_ycbcr_with(
    images: Sequence[np.ndarray], fuse_luminance: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> YCbCr:
    """Fuses two or more images in sequence with any luminance fusion (the network or a
    classic method), handling colour as described above; returns luminance and chroma."""
    if len(images) < 2:
        raise ValueError(f"fusion needs at least two images, got {len(images)}")
    fused = YCbCr.of(images[0])
    for image in images[1:]:
        fused = fuse_two(fused, YCbCr.of(image), fuse_luminance)
    return fused


def fuse_ycbcr(images: Sequence[np.ndarray], model: Generator, tile: int = 0) -> YCbCr:
    """Fuses two or more images in sequence with the network, returning luminance and chroma."""
    return fuse_ycbcr_with(images, lambda y1, y2: fuse_y(y1, y2, model, tile))


def saved_image(fused: YCbCr, scaling: str) -> np.ndarray:
    """The image a fusion is saved as, with an output scaling (`images.OUTPUT_SCALINGS`).

    ``authors`` is what the authors' test program saves: with gray sources, or one colour
    source (whose Cb, Cr the fused Y takes), the image stretched by 1 / its maximum (over all
    channels); with two colour sources their program does not recombine colour at all and saves
    the gray fused Y stretched by 1 / max(Y) (their colour fusion is a separate MATLAB step on
    that image), so that is the image saved, and scored, here too.
    """
    if scaling == "authors" and fused.chroma_fused:
        return scale_output(fused.y, scaling)
    return scale_output(fused.to_image(), scaling)


def fuse(images: Sequence[np.ndarray], model: Generator, tile: int = 0) -> np.ndarray:
    """Fuses two or more same-sized images (gray (H, W) or RGB (H, W, 3), in [0, 1]).

    Returns gray (H, W) if all sources are gray, else RGB (H, W, 3), float32 in [0, 1]: what a
    saved image holds before 8-bit rounding. (The fused Y is in [0, 1], but RGB rebuilt from it
    and the fused chroma can leave that range, -0.4 to 1.4 on PET + MRI, and is clipped here;
    `saved_image` of `fuse_ycbcr` gives the other output scalings.)
    """
    return np.clip(fuse_ycbcr(images, model, tile).to_image(), 0.0, 1.0)
