"""Classic fusion methods a user might pick instead of U2Fusion, as reference points in the results.

- `average`: the pixel-wise mean of the two sources.
- `laplacian_pyramid`: Burt & Adelson style pyramid fusion; the coarsest (Gaussian) level is
  averaged, and at every detail level the coefficient of larger magnitude is kept.
- `mertens`: OpenCV's exposure fusion (Mertens, Kautz & Van Reeth 2007), for multi-exposure pairs;
  it weighs contrast, saturation and well-exposedness per pixel and works on colour directly.

`average` and `laplacian_pyramid` fuse luminance, like the network: colour is handled as in
`u2fusion_tf.fusion` (see `fusion.fuse_ycbcr_with`).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

PYRAMID_COARSEST_SIDE = 8
"""The pyramid stops before its coarsest level would be smaller than this (pixels)."""


def average(y1: np.ndarray, y2: np.ndarray) -> np.ndarray:
    """Pixel-wise mean of two luminance images."""
    return ((y1.astype(np.float32) + y2.astype(np.float32)) / 2).astype(np.float32)


def pyramid_levels(shape: tuple[int, ...]) -> int:
    """Detail levels for an image: halve until the next level would go under the coarsest side."""
    levels, side = 0, min(shape[:2])
    while side // 2 >= PYRAMID_COARSEST_SIDE:
        side //= 2
        levels += 1
    return levels


def laplacian_pyramid_of(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """Detail levels (finest first) followed by the coarsest Gaussian level."""
    pyramid, current = [], image.astype(np.float32)
    for _ in range(levels):
        smaller = cv2.pyrDown(current)
        pyramid.append(current - cv2.pyrUp(smaller, dstsize=current.shape[1::-1]))
        current = smaller
    return [*pyramid, current]


def collapse(pyramid: Sequence[np.ndarray]) -> np.ndarray:
    """Inverts `laplacian_pyramid_of`: the image whose pyramid this is."""
    image = pyramid[-1]
    for detail in reversed(pyramid[:-1]):
        image = cv2.pyrUp(image, dstsize=detail.shape[1::-1]) + detail
    return image


def laplacian_pyramid(y1: np.ndarray, y2: np.ndarray) -> np.ndarray:
    """Pyramid fusion: mean of the coarsest levels, larger-magnitude detail coefficients."""
    levels = pyramid_levels(y1.shape)
    first, second = laplacian_pyramid_of(y1, levels), laplacian_pyramid_of(y2, levels)
    details = [
        np.where(np.abs(d1) >= np.abs(d2), d1, d2)
        for d1, d2 in zip(first[:-1], second[:-1], strict=True)
    ]
    return collapse([*details, (first[-1] + second[-1]) / 2])


def mertens(images: Sequence[np.ndarray]) -> np.ndarray:
    """Exposure fusion of gray or RGB images in [0, 1]; gray only if all sources are gray."""
    as_bgr8 = [
        cv2.cvtColor(_to_uint8(image), cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_RGB2BGR)
        for image in images
    ]
    colour = any(image.ndim == 3 for image in images)
    # Saturation is zero everywhere in gray images, which would zero every weight.
    merge = cv2.createMergeMertens(1.0, 1.0 if colour else 0.0, 1.0)
    rgb = np.clip(cv2.cvtColor(merge.process(as_bgr8), cv2.COLOR_BGR2RGB), 0.0, 1.0)
    return rgb if colour else rgb.mean(axis=-1)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
