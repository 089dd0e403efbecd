"""Makes the example pairs the README demo fuses, from public-domain images bundled with
scikit-image (``astronaut``: NASA; ``camera``: public domain, per scikit-image's data licence).

* ``focus_near.png`` / ``focus_far.png``: the astronaut (RGB) with its left / right half blurred,
  a synthetic multi-focus pair;
* ``exposure_under.png`` / ``exposure_over.png``: the camera man (gray) darkened / brightened
  by gamma curves, a synthetic multi-exposure pair.

Run ``python data/examples/make_examples.py`` (needs scikit-image) to rebuild them.
"""

from pathlib import Path

import cv2
import numpy as np
import skimage.data

HERE = Path(__file__).parent
SIDE = 256


def _blur_half(image: np.ndarray, left: bool) -> np.ndarray:
    blurred = cv2.GaussianBlur(image, (0, 0), 3.0)
    out = image.copy()
    half = image.shape[1] // 2
    columns = slice(0, half) if left else slice(half, None)
    out[:, columns] = blurred[:, columns]
    return out


def main() -> None:
    astronaut = cv2.resize(skimage.data.astronaut(), (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    bgr = astronaut[:, :, ::-1]
    cv2.imwrite(str(HERE / "focus_near.png"), _blur_half(bgr, left=False))
    cv2.imwrite(str(HERE / "focus_far.png"), _blur_half(bgr, left=True))
    camera = cv2.resize(skimage.data.camera(), (SIDE, SIDE), interpolation=cv2.INTER_AREA) / 255.0
    cv2.imwrite(str(HERE / "exposure_under.png"), np.round(255 * camera**2.5).astype(np.uint8))
    cv2.imwrite(str(HERE / "exposure_over.png"), np.round(255 * camera**0.3).astype(np.uint8))


if __name__ == "__main__":
    main()
