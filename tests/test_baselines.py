"""Classic fusion baselines: exactness where it is defined, and sensible results on real pairs."""

from __future__ import annotations

import numpy as np
import pytest

from u2fusion_tf import baselines
from u2fusion_tf.images import read_image, to_luminance
from u2fusion_tf.metrics import compute_metrics


def test_average_is_the_mean():
    rng = np.random.default_rng(0)
    y1, y2 = rng.random((2, 33, 47)).astype(np.float32)
    np.testing.assert_allclose(baselines.average(y1, y2), (y1 + y2) / 2, atol=1e-7)


@pytest.mark.parametrize("shape", [(257, 301), (64, 64), (9, 700)])
def test_laplacian_pyramid_of_one_image_twice_is_that_image(shape):
    """The pyramid is invertible and fusing a source with itself changes nothing."""
    image = np.random.default_rng(1).random(shape).astype(np.float32)
    levels = baselines.pyramid_levels(shape)
    assert min(shape) // 2**levels >= baselines.PYRAMID_COARSEST_SIDE
    np.testing.assert_allclose(
        baselines.collapse(baselines.laplacian_pyramid_of(image, levels)), image, atol=1e-5
    )
    np.testing.assert_allclose(baselines.laplacian_pyramid(image, image), image, atol=1e-5)


def test_laplacian_pyramid_keeps_the_focused_detail_of_a_multi_focus_pair(shared_data):
    """On a real near/far pair, keeping the larger detail gives a sharper result than the mean."""
    folder = shared_data / "mfifb"
    y1, y2 = (to_luminance(read_image(folder / side / "lytro_01.jpg")) for side in ("a", "b"))
    pyramid = np.clip(baselines.laplacian_pyramid(y1, y2), 0, 1)
    mean = baselines.average(y1, y2)
    scores = {
        name: compute_metrics(y1, y2, fused, ["EI", "Qabf"])
        for name, fused in (("pyramid", pyramid), ("mean", mean))
    }
    assert scores["pyramid"]["EI"] > 1.1 * scores["mean"]["EI"]
    assert scores["pyramid"]["Qabf"] > scores["mean"]["Qabf"]


def exposure_error(image: np.ndarray) -> float:
    """How far the image's mean luminance is from mid-gray."""
    return abs(float(to_luminance(image).mean()) - 0.5)


def test_mertens_balances_a_real_exposure_pair(shared_data):
    folder = shared_data / "mefb"
    under, over = (read_image(next((folder / side).glob("AirBellowsGap.*"))) for side in "ab")
    fused = baselines.mertens([under, over])
    assert fused.shape == under.shape and fused.dtype == np.float32
    assert fused.min() >= 0 and fused.max() <= 1
    assert exposure_error(fused) < min(exposure_error(under), exposure_error(over))


def test_mertens_weighs_gray_sources_by_exposure_not_evenly(shared_data):
    """Gray sources have no saturation; the fusion must still favour the well-exposed one."""
    folder = shared_data / "u2fusion_test" / "multi-exposure" / "dataset1"
    path = sorted((folder / "oe").iterdir())[0]
    over = read_image(path)
    under = read_image(next((folder / "ue").glob(path.stem + ".*")))
    assert over.ndim == under.ndim == 2
    fused = baselines.mertens([over, under])
    assert fused.shape == over.shape
    assert np.isfinite(fused).all()
    assert np.abs(fused - baselines.average(over, under)).mean() > 0.01
    assert exposure_error(fused) < min(exposure_error(over), exposure_error(under))
