"""How much information a source holds: the VGG16 information measure and preservation degrees.

U2Fusion weighs each source by the gradient energy of its VGG16 feature maps (paper Sec. 3.2):

* Eq. 1: g(I) = 1/5 * sum_j mean_{h,w,c} (Laplacian of the j-th feature map)^2, the five maps
  being the post-ReLU outputs of block1_conv2 ... block5_conv3;
* Eq. 2: [w1, w2] = softmax([g(I1) / c, g(I2) / c]), c a per-task constant.

The VGG16 input follows the authors' code: the gray [0, 1] patch, nearest-neighbour resized to
224x224 on TF1's grid (source pixel floor(i * in / out), no half-pixel centres), repeated to
three channels, times 255, minus the BGR channel means (caffe style).
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.precision import canonical_precision, dtype_policy

VGG_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
VGG_INPUT_SIDE = 224
VGG_BGR_MEANS = (103.939, 116.779, 123.68)
IMAGENET_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
LAPLACIAN = np.array([[1, 1, 1], [1, -8, 1], [1, 1, 1]], np.float32) / 8
"""The 3x3 Laplacian of Eq. 1: 1/8 around, -1 in the centre."""


class VGGFeatureHead(keras.Model):
    """Frozen VGG16 returning the five feature maps of Eq. 1 for gray patches in [0, 1].

    `weights`: "imagenet" (Keras downloads and caches them), a local ``.h5`` file, or "none"
    (an untrained head initialised from `seed`: usable where ImageNet weights cannot be had,
    but its degrees are not the paper's). `precision` "bf16" (`u2fusion_tf.precision`) runs
    VGG16 in Keras mixed precision, about 4x faster on CPUs with bf16 units; g is then accurate
    to about 1e-3.
    """

    def __init__(
        self, weights: str = "imagenet", seed: int = 0, precision: str = "float32", **kwargs
    ):
        super().__init__(**kwargs)
        try:
            precision = canonical_precision(precision)
        except ValueError as error:
            raise U2FusionError(f"VGG16: {error}") from error
        policy = keras.config.dtype_policy()
        keras.config.set_dtype_policy(dtype_policy(precision))
        try:
            vgg = self._vgg16(weights, seed)
        finally:
            keras.config.set_dtype_policy(policy)
        self.weights_name = weights
        self.precision = precision
        self.vgg = keras.Model(vgg.input, [vgg.get_layer(name).output for name in VGG_LAYERS])
        self.vgg.trainable = False
        self.trainable = False

    @staticmethod
    def _vgg16(weights: str, seed: int) -> keras.Model:
        if weights == "none":
            logging.warning(
                "VGG16 head is untrained (--vgg_weights none): the preservation degrees are "
                "not the paper's, which used ImageNet weights"
            )
            keras.utils.set_random_seed(seed)
            return keras.applications.VGG16(include_top=False, weights=None)
        if weights == "imagenet":
            return _imagenet_vgg16()
        if not os.path.isfile(weights):
            raise U2FusionError(f"{weights}: no such VGG16 weights file")
        vgg = keras.applications.VGG16(include_top=False, weights=None)
        try:
            vgg.load_weights(weights)
        except Exception as error:  # h5py and Keras raise many types for a bad file
            raise U2FusionError(
                f"{weights}: not VGG16 (include_top=False) weights ({error})"
            ) from error
        return vgg

    def call(self, patches):
        x = resize_like_tf1(patches, VGG_INPUT_SIDE)
        x = tf.repeat(x, 3, axis=-1) * 255.0 - tf.constant(VGG_BGR_MEANS, x.dtype)
        return self.vgg(x, training=False)

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 1), tf.float32)])
    def measure(self, patches):
        """g (Eq. 1) of each patch, as one traced graph."""
        return laplacian_energy(self(patches))


def resize_like_tf1(images: tf.Tensor, side: int) -> tf.Tensor:
    """Nearest-neighbour resize to side x side as the authors' TF1
    ``tf.image.resize_nearest_neighbor`` (align_corners=False, half_pixel_centers=False);
    TF2's ``tf.image.resize(method="nearest")`` samples half-pixel centres and so takes another
    source pixel for some rows and columns."""
    return tf.raw_ops.ResizeNearestNeighbor(
        images=images, size=[side, side], align_corners=False, half_pixel_centers=False
    )


def _imagenet_vgg16() -> keras.Model:
    """Keras' ImageNet VGG16, failing at once with advice when it cannot be downloaded."""
    try:
        return keras.applications.VGG16(include_top=False, weights="imagenet")
    except Exception as error:  # any download failure ends in the same advice
        cache = os.path.join(os.environ.get("KERAS_HOME", "~/.keras"), "models", IMAGENET_FILE)
        raise U2FusionError(
            f"cannot get the ImageNet VGG16 weights ({error}); put {IMAGENET_FILE} in {cache}, "
            "pass a local .h5 file, or use 'none' (an untrained head: not the paper's degrees)"
        ) from error


def laplacian_energy(features: list[tf.Tensor]) -> tf.Tensor:
    """Eq. 1: g of each batch item, from its five VGG16 feature maps."""
    energies = []
    for feature in features:
        feature = tf.cast(feature, tf.float32)
        channels = feature.shape[-1]
        kernel = tf.tile(tf.constant(LAPLACIAN)[:, :, None, None], [1, 1, channels, 1])
        filtered = tf.nn.depthwise_conv2d(feature, kernel, [1, 1, 1, 1], "SAME")
        energies.append(tf.reduce_mean(tf.square(filtered), axis=[1, 2, 3]))
    return tf.add_n(energies) / len(features)


def information_measure(
    head: VGGFeatureHead, patches: np.ndarray | tf.Tensor, batch_size: int = 32
) -> tf.Tensor:
    """g (Eq. 1) of each gray patch (B, h, w, 1) in [0, 1], in batches of `batch_size`."""
    patches = tf.convert_to_tensor(patches, tf.float32)
    if patches.shape[0] is not None and patches.shape[0] <= batch_size:
        return head.measure(patches)
    return tf.concat(
        [head.measure(patches[i : i + batch_size]) for i in range(0, patches.shape[0], batch_size)],
        0,
    )


def preservation_degrees(
    g1: np.ndarray | tf.Tensor, g2: np.ndarray | tf.Tensor, c: float
) -> tf.Tensor:
    """Eq. 2: [w1, w2] = softmax([g1 / c, g2 / c]) for each batch item, shape (B, 2)."""
    return tf.nn.softmax(tf.stack([g1, g2], axis=-1) / c, axis=-1)
