"""The U2Fusion generator: the DenseNet that fuses two single-channel sources (paper Sec. 3.3,
Fig. 4).

Layer by layer it is the authors' released network:

* every convolution is 3x3, stride 1, with bias, preceded by 1-pixel reflection padding;
* encoder: ``conv1_1`` (2 -> 44, LeakyReLU 0.2), then five dense convolutions
  ``dense_block_conv1..5`` (44k -> 44, LeakyReLU 0.2); after each the running tensor becomes
  ``concat([new, running])``, so the encoder ends with 6 * 44 = 264 channels;
* decoder: ``conv2_1`` 264 -> 128, ``conv2_2`` 128 -> 64, ``conv2_3`` 64 -> 32 (LeakyReLU 0.2), and
  ``conv2_4`` 32 -> 1 followed by ``tanh(x) / 2 + 0.5`` so that the fused image lies in [0, 1].

The layer names are those of the authors' TF1 checkpoint, which `u2fusion_tf.weights` imports.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from u2fusion_tf.precision import canonical_precision, dtype_policy

GROWTH = 44
"""Channels each encoder convolution adds (the authors' ``n``)."""
DENSE_CONVOLUTIONS = 5
DECODER_CHANNELS = (128, 64, 32)
LEAKY_SLOPE = 0.2
INIT_STDDEV = 0.05
"""The authors initialise kernels from a truncated normal with this deviation and biases at 0."""
RECEPTIVE_RADIUS = 10
"""Ten 3x3 convolutions: an output pixel sees the inputs at most this many pixels away."""


def reflect_pad(x: tf.Tensor) -> tf.Tensor:
    """Mirrors a 1-pixel border around the image (edge pixels not repeated, as TF's REFLECT)."""
    return tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")


class ReflectConv(keras.layers.Layer):
    """A 3x3 convolution after 1-pixel reflection padding, optionally followed by LeakyReLU(0.2).

    Reflection padding (rather than zero padding) keeps image borders free of dark seams.
    """

    def __init__(self, filters: int, leaky_relu: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.leaky_relu = leaky_relu
        self.conv = keras.layers.Conv2D(
            filters,
            3,
            padding="valid",
            dtype=self.dtype_policy,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=INIT_STDDEV),
            bias_initializer="zeros",
            name="conv",
        )

    def build(self, input_shape):
        self.conv.build((None, None, None, input_shape[-1]))

    def call(self, x, padded: bool = False):
        """`padded`: `x` already carries the 1-pixel reflection border."""
        y = self.conv(x if padded else reflect_pad(x))
        return tf.nn.leaky_relu(y, alpha=LEAKY_SLOPE) if self.leaky_relu else y

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "leaky_relu": self.leaky_relu}


class U2FusionNet(keras.Model):
    """Maps a (batch, H, W, 2) tensor of sources (I1, I2) in [0, 1] to the fused (batch, H, W, 1).

    Works on any H, W >= 2 (reflection padding needs two pixels) and any batch size.
    `precision` (`u2fusion_tf.precision`) "bf16" computes in bfloat16 (Keras mixed precision)
    with float32 weights and a float32 output.
    """

    def __init__(self, precision: str = "float32", **kwargs):
        super().__init__(**kwargs)
        self.precision = canonical_precision(precision)
        policy = dtype_policy(self.precision)
        self.conv1_1 = ReflectConv(GROWTH, name="conv1_1", dtype=policy)
        self.dense_block = [
            ReflectConv(GROWTH, name=f"dense_block_conv{k}", dtype=policy)
            for k in range(1, DENSE_CONVOLUTIONS + 1)
        ]
        self.decoder = [
            ReflectConv(channels, name=f"conv2_{k}", dtype=policy)
            for k, channels in enumerate(DECODER_CHANNELS, 1)
        ]
        self.conv2_4 = ReflectConv(1, leaky_relu=False, name="conv2_4", dtype=policy)
        self(tf.zeros((1, 2, 2, 2)))  # create the weights now, so they can be loaded at once

    def encode(self, sources):
        """Encoder features (264 channels, newest dense output first, the authors' order), kept
        reflection-padded: padding commutes with concatenation along channels, so each dense
        step pads only its 44 new channels rather than the whole running tensor (same result,
        about a tenth faster)."""
        features = reflect_pad(self.conv1_1(sources))
        for conv in self.dense_block:
            features = tf.concat([reflect_pad(conv(features, padded=True)), features], axis=-1)
        return features

    def call(self, sources):
        x = self.decoder[0](self.encode(sources), padded=True)
        for conv in self.decoder[1:]:
            x = conv(x)
        x = tf.cast(self.conv2_4(x), tf.float32)
        return tf.tanh(x) / 2 + 0.5

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 2), tf.float32)])
    def infer(self, sources):
        """`call` as one traced graph (any size, no retracing): what fusion runs."""
        return self(sources, training=False)

    def named_convolutions(self) -> dict[str, keras.layers.Conv2D]:
        """The ten convolutions by their checkpoint names, in the order the data flows."""
        layers = [self.conv1_1, *self.dense_block, *self.decoder, self.conv2_4]
        return {layer.name: layer.conv for layer in layers}
