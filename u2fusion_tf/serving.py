"""The SavedModel's serving signatures as TensorFlow functions around one generator (see
`u2fusion_tf.export`, which writes them): the fused Y, and whole images with the fuse tool's
colour rules and 8-bit rounding."""

from __future__ import annotations

import tensorflow as tf

from u2fusion_tf.images import CHROMA_CENTRE, RGB_TO_YCBCR, YCBCR_TO_RGB
from u2fusion_tf.model import U2FusionNet

_SOURCE = tf.TensorSpec((None, None, None, 1), tf.float32)
_IMAGE = tf.TensorSpec((None, None, None), tf.uint8)


def _to_ycbcr(image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """uint8 (H, W, 1 or 3) -> Y (H, W), Cb-Cr (H, W, 2) and whether it is gray; a gray image
    keeps its values as Y and has exactly gray chroma, as `fusion.YCbCr.of` gives it."""
    pixels = tf.cast(image, tf.float32) / 255.0
    gray = tf.equal(tf.shape(image)[-1], 1)
    rgb = tf.tile(pixels, [1, 1, 3 // tf.shape(image)[-1]])
    ycbcr = tf.tensordot(rgb, tf.constant(RGB_TO_YCBCR.T, tf.float32), 1)
    y = tf.where(gray, pixels[..., 0], ycbcr[..., 0])
    chroma = tf.where(gray, CHROMA_CENTRE, ycbcr[..., 1:] + CHROMA_CENTRE)
    return y, chroma, gray


def _fuse_chroma(c1: tf.Tensor, c2: tf.Tensor) -> tf.Tensor:
    """`images.fuse_chroma` (paper Eq. 10) in TensorFlow."""
    d1, d2 = tf.abs(c1 - CHROMA_CENTRE), tf.abs(c2 - CHROMA_CENTRE)
    total = d1 + d2
    return tf.where(total == 0, CHROMA_CENTRE, tf.math.divide_no_nan(c1 * d1 + c2 * d2, total))


class FusionModule(tf.Module):
    """The serving signatures around one generator (see the module docstring)."""

    def __init__(self, model: U2FusionNet):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[_SOURCE, _SOURCE])
    def fuse_y(self, source1: tf.Tensor, source2: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"fused_y": self.model(tf.concat([source1, source2], -1), training=False)}

    @tf.function(input_signature=[_IMAGE, _IMAGE])
    def fuse_images(self, image1: tf.Tensor, image2: tf.Tensor) -> dict[str, tf.Tensor]:
        tf.debugging.assert_equal(tf.shape(image1)[:2], tf.shape(image2)[:2], "sizes differ")
        y1, chroma1, gray1 = _to_ycbcr(image1)
        y2, chroma2, gray2 = _to_ycbcr(image2)
        y = self.model(tf.stack([y1, y2], -1)[tf.newaxis], training=False)[0]
        chroma = tf.where(gray1, chroma2, tf.where(gray2, chroma1, _fuse_chroma(chroma1, chroma2)))
        ycbcr = tf.concat([y, chroma - CHROMA_CENTRE], -1)
        rgb = tf.tensordot(ycbcr, tf.constant(YCBCR_TO_RGB.T, tf.float32), 1)
        channels = tf.where(gray1 & gray2, 1, 3)  # gray: R = Y exactly, the chroma being 0.5
        fused = tf.round(tf.clip_by_value(rgb[..., :channels], 0.0, 1.0) * 255.0)
        return {"fused": tf.cast(fused, tf.uint8)}
