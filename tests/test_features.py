"""The information measure g (Eq. 1) and the preservation degrees (Eq. 2)."""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest
import scipy.signal
import tensorflow as tf

from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.features import (
    LAPLACIAN,
    VGG_BGR_MEANS,
    VGG_LAYERS,
    VGGFeatureHead,
    information_measure,
    laplacian_energy,
    preservation_degrees,
    resize_like_tf1,
)
from u2fusion_tf.training import TrainConfig, Trainer

RNG = np.random.default_rng(9)


@pytest.fixture(scope="module")
def head():
    return VGGFeatureHead("none", seed=0)


def numpy_g(maps: list[np.ndarray]) -> np.ndarray:
    """Eq. 1 with SciPy: per channel 'same' zero-padded Laplacian, squared, averaged, / 5."""
    kernel = np.array([[1, 1, 1], [1, -8, 1], [1, 1, 1]]) / 8.0
    per_map = []
    for feature in maps:
        energy = np.zeros(feature.shape[0])
        for b in range(feature.shape[0]):
            filtered = [
                scipy.signal.convolve2d(feature[b, :, :, c], kernel, mode="same", boundary="fill")
                for c in range(feature.shape[-1])
            ]
            energy[b] = np.mean(np.square(filtered))
        per_map.append(energy)
    return np.mean(per_map, axis=0)


def test_laplacian_kernel():
    np.testing.assert_array_equal(
        LAPLACIAN, [[1 / 8, 1 / 8, 1 / 8], [1 / 8, -1, 1 / 8], [1 / 8, 1 / 8, 1 / 8]]
    )


def test_g_and_degrees_against_numpy():
    maps = [
        RNG.normal(0, s, (2, n, n, c)).astype(np.float32)
        for s, n, c in [(1, 9, 3), (2, 7, 4), (3, 5, 2), (1, 4, 5), (5, 3, 1)]
    ]
    g = laplacian_energy([tf.constant(m) for m in maps]).numpy()
    np.testing.assert_allclose(g, numpy_g(maps), rtol=1e-5)
    g1, g2, c = np.array([3200.0, 10.0]), np.array([0.0, 20.0]), 3200.0
    expected = np.exp([[1, 0], [10 / c, 20 / c]]) / np.exp([[1, 0], [10 / c, 20 / c]]).sum(
        1, keepdims=True
    )
    np.testing.assert_allclose(preservation_degrees(g1, g2, c).numpy(), expected, rtol=1e-6)


def test_head_preprocessing_layers_and_determinism(head):
    patch = RNG.uniform(0, 1, (1, 64, 64, 1)).astype(np.float32)
    features = head(patch)
    assert [tuple(f.shape) for f in features] == [
        (1, 224, 224, 64),
        (1, 112, 112, 128),
        (1, 56, 56, 256),
        (1, 28, 28, 512),
        (1, 14, 14, 512),
    ]
    assert all(float(tf.reduce_min(f)) >= 0 for f in features), "post-ReLU outputs"
    assert head.trainable_weights == [] and len(head.weights) > 0
    again = VGGFeatureHead("none", seed=0)
    np.testing.assert_allclose(
        information_measure(again, patch), information_measure(head, patch), rtol=1e-6
    )
    other = VGGFeatureHead("none", seed=1)
    assert (
        abs(
            float(information_measure(other, patch)[0]) - float(information_measure(head, patch)[0])
        )
        > 1e-6
    )
    assert [layer for layer in VGG_LAYERS] == [
        "block1_conv2",
        "block2_conv2",
        "block3_conv3",
        "block4_conv3",
        "block5_conv3",
    ]


def test_vgg_input_is_resized_on_the_tf1_grid(head):
    """The authors' TF1 resize_nearest_neighbor grid, not TF2's half-pixel one (which takes
    another source pixel in 32 of 224 rows and columns), and the head really uses it."""
    patch = RNG.uniform(0, 1, (2, 64, 64, 1)).astype(np.float32)
    tf1 = tf.compat.v1.image.resize_nearest_neighbor(patch, (224, 224)).numpy()
    np.testing.assert_array_equal(resize_like_tf1(tf.constant(patch), 224).numpy(), tf1)
    rows = np.broadcast_to(np.arange(64, dtype=np.float32)[None, :, None, None], (1, 64, 64, 1))
    sampled = resize_like_tf1(tf.constant(rows), 224).numpy()[0, :, 0, 0]
    half_pixel = tf.image.resize(rows, (224, 224), method="nearest").numpy()[0, :, 0, 0]
    np.testing.assert_array_equal(sampled, np.floor(np.arange(224) * 64 / 224))
    assert int((sampled != half_pixel).sum()) == 32
    x = np.repeat(tf1, 3, axis=-1) * 255.0 - np.array(VGG_BGR_MEANS, np.float32)
    np.testing.assert_allclose(head(patch)[0], head.vgg(x)[0], rtol=1e-5, atol=1e-4)


def test_head_input_scaling(head):
    """A constant patch of value v reaches block1_conv1 as 255 v minus the BGR means."""
    first = head.vgg.get_layer("block1_conv1")
    kernel, bias = first.kernel.numpy(), first.bias.numpy()
    value = 0.3
    x = np.full((1, 224, 224, 3), 255 * value, np.float32) - np.array(
        [103.939, 116.779, 123.68], np.float32
    )
    expected_centre = np.einsum("ijc,ijco->o", x[0, :3, :3], kernel) + bias
    block1 = keras.Model(head.vgg.input, first.output)
    tensor = tf.image.resize(np.full((1, 8, 8, 1), value, np.float32), (224, 224), method="nearest")
    tensor = tf.repeat(tensor, 3, axis=-1) * 255.0 - tf.constant([103.939, 116.779, 123.68])
    np.testing.assert_allclose(
        block1(tensor)[0, 100, 100], np.maximum(expected_centre, 0), rtol=1e-4, atol=1e-3
    )


def test_batched_measure_equals_one_by_one(head):
    patches = RNG.uniform(0, 1, (5, 64, 64, 1)).astype(np.float32)
    together = information_measure(head, patches, batch_size=2).numpy()
    alone = np.concatenate(
        [information_measure(head, patches[i : i + 1]).numpy() for i in range(5)]
    )
    np.testing.assert_allclose(together, alone, rtol=1e-5)


def test_online_and_precomputed_degrees_agree(tmp_path, head):
    sources = RNG.uniform(0, 1, (4, 64, 64, 2)).astype(np.float32)
    information = np.stack(
        [information_measure(head, sources[..., i : i + 1]).numpy() for i in (0, 1)], -1
    )
    base = {"data_files": {}, "run_dir": str(tmp_path / "run"), "vgg_weights": "none"}
    online = Trainer(TrainConfig(**base, measure_online=True), log=lambda _: None)
    stored = Trainer(TrainConfig(**base), log=lambda _: None)
    c = float(np.std(information) + 1e-3)
    got_online = online.degrees(tf.constant(sources), tf.zeros((4, 2)), c).numpy()
    got_stored = stored.degrees(tf.constant(sources), tf.constant(information), c).numpy()
    np.testing.assert_allclose(got_online, got_stored, rtol=1e-5)
    assert np.abs(got_stored - 0.5).max() > 1e-3, "c chosen so that the degrees are not all 0.5"


def test_imagenet_fails_fast_with_advice_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve", _refuse_network, raising=False)
    started = time.monotonic()
    with pytest.raises(U2FusionError, match=r"local \.h5 file, or use 'none'"):
        VGGFeatureHead("imagenet")
    assert time.monotonic() - started < 30


def _refuse_network(*args, **kwargs):
    raise OSError("network is unreachable")


def test_bad_local_weights_files(tmp_path):
    with pytest.raises(U2FusionError, match=r"missing\.h5: no such VGG16 weights file"):
        VGGFeatureHead(str(tmp_path / "missing.h5"))
    (tmp_path / "bad.weights.h5").write_bytes(b"nope")
    with pytest.raises(U2FusionError, match=r"bad\.weights\.h5: not VGG16"):
        VGGFeatureHead(str(tmp_path / "bad.weights.h5"))
