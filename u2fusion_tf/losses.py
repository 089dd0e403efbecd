"""The loss U2Fusion minimises (paper Eqs. 3-6): the similarity between the fused image and both
sources, weighted by the preservation degrees, plus the EWC term.

* Eq. 3: L = L_sim + lambda L_ewc (L_ewc in `u2fusion_tf.ewc`)
* Eq. 4: L_ssim = E[w1 (1 - SSIM(If, I1)) + w2 (1 - SSIM(If, I2))]
* Eq. 5: L_mse  = E[w1 MSE(If, I1) + w2 MSE(If, I2)], MSE the per-image mean squared difference
* Eq. 6: L_sim  = L_ssim + alpha L_mse, alpha = 20

E is the mean over the batch; SSIM is `tf.image.ssim` (11x11 Gaussian window, sigma 1.5,
k1 0.01, k2 0.03) on [0, 1] images.

`MSE_WEIGHTINGS` names how Eq. 5 weighs the batch: "paper" (the default) weights each patch's
MSE by that patch's own degrees, as Eq. 5 writes; "authors" is the released code's
``mean(s[:, 0] * mse1 + s[:, 1] * mse2)``, whose (B,) by (B, 1) broadcast makes it
mean(w1) * mean(MSE1) + mean(w2) * mean(MSE2) over the batch.

Under `tf.distribute` each replica returns its piece's mean, which the training step divides by
the number of replicas so that the summed gradients are those of the global-batch mean; the
mean degrees of the "authors" weighting are taken over the global batch.
"""

from __future__ import annotations

import tensorflow as tf

from u2fusion_tf.config import ALPHA, MSE_WEIGHTINGS

SSIM_WINDOW = 11
"""Side of SSIM's Gaussian window: patches must be at least this large."""


def _per_source(fused: tf.Tensor, sources: tf.Tensor, similarity) -> tf.Tensor:
    """(B, 2): `similarity(fused, source)` per image for each of the two sources."""
    return tf.stack([similarity(fused, sources[..., i : i + 1]) for i in (0, 1)], axis=-1)


def _ssim(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    return tf.image.ssim(
        x, y, max_val=1.0, filter_size=SSIM_WINDOW, filter_sigma=1.5, k1=0.01, k2=0.03
    )


def _mse(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.square(x - y), axis=[1, 2, 3])


def global_batch_mean(x: tf.Tensor) -> tf.Tensor:
    """The mean of a constant of the step (no gradient flows through it) over the batch; under
    `tf.distribute`, over the global batch, of which every replica holds an equal piece."""
    mean = tf.reduce_mean(x, axis=0)
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return mean
    return context.all_reduce(tf.distribute.ReduceOp.MEAN, tf.stop_gradient(mean))


def ssim_loss(fused: tf.Tensor, sources: tf.Tensor, degrees: tf.Tensor) -> tf.Tensor:
    """Eq. 4 for fused (B, H, W, 1), sources (B, H, W, 2) and degrees (B, 2)."""
    return tf.reduce_mean(
        tf.reduce_sum(degrees * (1.0 - _per_source(fused, sources, _ssim)), axis=-1)
    )


def mse_loss(
    fused: tf.Tensor, sources: tf.Tensor, degrees: tf.Tensor, weighting: str = "paper"
) -> tf.Tensor:
    """Eq. 5 for fused (B, H, W, 1), sources (B, H, W, 2) and degrees (B, 2); `weighting` is one
    of `MSE_WEIGHTINGS`."""
    errors = _per_source(fused, sources, _mse)
    if weighting == "authors":
        return tf.reduce_sum(global_batch_mean(degrees) * tf.reduce_mean(errors, axis=0))
    if weighting != "paper":
        raise ValueError(f"unknown MSE weighting {weighting!r}; use one of {MSE_WEIGHTINGS}")
    return tf.reduce_mean(tf.reduce_sum(degrees * errors, axis=-1))


def similarity_loss(
    fused: tf.Tensor,
    sources: tf.Tensor,
    degrees: tf.Tensor,
    alpha: float = ALPHA,
    mse_weighting: str = "paper",
) -> dict[str, tf.Tensor]:
    """Eq. 6: {"total": L_ssim + alpha L_mse, "ssim": L_ssim, "mse": L_mse}."""
    fused = tf.cast(fused, tf.float32)
    ssim = ssim_loss(fused, sources, degrees)
    mse = mse_loss(fused, sources, degrees, mse_weighting)
    return {"total": ssim + alpha * mse, "ssim": ssim, "mse": mse}


def total_loss(similarity: tf.Tensor, ewc_penalty: tf.Tensor, ewc_lambda: float) -> tf.Tensor:
    """Eq. 3: L = L_sim + lambda L_ewc, L_ewc = 1/2 sum_i mu_i (theta_i - theta*_i)^2 (Eq. 7)."""
    return similarity + ewc_lambda * ewc_penalty
