"""The similarity loss between the fused image and both sources, weighted by the preservation
degrees (paper Eqs. 4-6).

* Eq. 4: L_ssim = E[w1 (1 - SSIM(If, I1)) + w2 (1 - SSIM(If, I2))]
* Eq. 5: L_mse  = E[w1 MSE(If, I1) + w2 MSE(If, I2)], MSE the per-image mean squared difference
* Eq. 6: L_sim  = L_ssim + alpha L_mse, alpha = 20

E is the mean over the batch; SSIM is `tf.image.ssim` (11x11 Gaussian window, sigma 1.5,
k1 0.01, k2 0.03) on [0, 1] images.
"""

from __future__ import annotations

import tensorflow as tf

ALPHA = 20.0
"""Weight of L_mse in L_sim (Eq. 6)."""


def _per_source(fused: tf.Tensor, sources: tf.Tensor, similarity) -> tf.Tensor:
    """(B, 2): `similarity(fused, source)` per image for each of the two sources."""
    return tf.stack([similarity(fused, sources[..., i : i + 1]) for i in (0, 1)], axis=-1)


def _ssim(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    return tf.image.ssim(x, y, max_val=1.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03)


def _mse(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.square(x - y), axis=[1, 2, 3])


def ssim_loss(fused: tf.Tensor, sources: tf.Tensor, degrees: tf.Tensor) -> tf.Tensor:
    """Eq. 4 for fused (B, H, W, 1), sources (B, H, W, 2) and degrees (B, 2)."""
    return tf.reduce_mean(
        tf.reduce_sum(degrees * (1.0 - _per_source(fused, sources, _ssim)), axis=-1)
    )


def mse_loss(fused: tf.Tensor, sources: tf.Tensor, degrees: tf.Tensor) -> tf.Tensor:
    """Eq. 5 for fused (B, H, W, 1), sources (B, H, W, 2) and degrees (B, 2)."""
    return tf.reduce_mean(tf.reduce_sum(degrees * _per_source(fused, sources, _mse), axis=-1))


def similarity_loss(
    fused: tf.Tensor, sources: tf.Tensor, degrees: tf.Tensor, alpha: float = ALPHA
) -> dict[str, tf.Tensor]:
    """Eq. 6: {"total": L_ssim + alpha L_mse, "ssim": L_ssim, "mse": L_mse}."""
    fused = tf.cast(fused, tf.float32)
    ssim, mse = ssim_loss(fused, sources, degrees), mse_loss(fused, sources, degrees)
    return {"total": ssim + alpha * mse, "ssim": ssim, "mse": mse}
