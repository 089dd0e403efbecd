"""L_ssim, L_mse and L_sim (Eqs. 4-6) against direct formulas."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from u2fusion_tf.config import ALPHA
from u2fusion_tf.losses import mse_loss, similarity_loss, ssim_loss

RNG = np.random.default_rng(4)


def reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM over the valid region of an 11x11 sigma-1.5 Gaussian window (tf.image.ssim's
    convention), from scikit-image's full map cropped by the 5-pixel border."""
    _, full = structural_similarity(
        x,
        y,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        full=True,
    )
    return float(full[5:-5, 5:-5].mean())


@pytest.fixture
def batch():
    sources = RNG.uniform(0, 1, (3, 24, 20, 2)).astype(np.float32)
    fused = np.clip(
        sources.mean(-1, keepdims=True) + RNG.normal(0, 0.05, (3, 24, 20, 1)), 0, 1
    ).astype(np.float32)
    degrees = np.array([[0.7, 0.3], [0.5, 0.5], [0.1, 0.9]], np.float32)
    return fused, sources, degrees


def test_ssim_loss_eq4(batch):
    fused, sources, degrees = batch
    expected = np.mean(
        [
            sum(
                degrees[b, i] * (1 - reference_ssim(fused[b, :, :, 0], sources[b, :, :, i]))
                for i in (0, 1)
            )
            for b in range(3)
        ]
    )
    assert float(ssim_loss(fused, sources, degrees)) == pytest.approx(expected, abs=1e-4)


def test_mse_loss_eq5(batch):
    fused, sources, degrees = batch
    per_image = ((fused - sources) ** 2).mean(axis=(1, 2))  # (B, 2)
    expected = np.mean((degrees * per_image).sum(-1))
    assert float(mse_loss(fused, sources, degrees)) == pytest.approx(expected, rel=1e-5)


def test_mse_loss_as_released_weighs_batch_means(batch):
    """The authors' mean(s[:, 0] * mse1 + s[:, 1] * mse2) with s (B, 2) and mse (B, 1)."""
    fused, sources, degrees = batch
    mse1 = ((fused - sources[..., :1]) ** 2).mean(axis=(1, 2))  # (B, 1) as in their code
    mse2 = ((fused - sources[..., 1:]) ** 2).mean(axis=(1, 2))
    expected = np.mean(degrees[:, 0] * mse1 + degrees[:, 1] * mse2)
    released = float(mse_loss(fused, sources, degrees, "authors"))
    assert released == pytest.approx(expected, rel=1e-5)
    assert abs(released - float(mse_loss(fused, sources, degrees))) > 1e-4
    with pytest.raises(ValueError, match="unknown MSE weighting"):
        mse_loss(fused, sources, degrees, "average")


def test_degrees_select_sources_and_alpha(batch):
    fused, sources, _ = batch
    only_first = np.tile([[1.0, 0.0]], (3, 1)).astype(np.float32)
    copy_first = sources[..., :1]
    losses = similarity_loss(copy_first, sources, only_first)
    assert float(losses["ssim"]) == pytest.approx(0, abs=1e-5) and float(losses["mse"]) == 0
    only_second = only_first[:, ::-1].copy()
    losses = similarity_loss(fused, sources, only_second, alpha=7.0)
    assert float(losses["total"]) == pytest.approx(
        float(losses["ssim"]) + 7.0 * float(losses["mse"]), rel=1e-6
    )
    assert float(losses["mse"]) == pytest.approx(((fused - sources[..., 1:]) ** 2).mean(), rel=1e-5)
    assert ALPHA == 20.0
