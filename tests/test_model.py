"""The generator's architecture, checked against the paper's description and a NumPy twin."""

from __future__ import annotations

import numpy as np
import pytest

from u2fusion_tf.model import RECEPTIVE_RADIUS, U2FusionNet

EXPECTED_KERNELS = {
    "conv1_1": (3, 3, 2, 44),
    "dense_block_conv1": (3, 3, 44, 44),
    "dense_block_conv2": (3, 3, 88, 44),
    "dense_block_conv3": (3, 3, 132, 44),
    "dense_block_conv4": (3, 3, 176, 44),
    "dense_block_conv5": (3, 3, 220, 44),
    "conv2_1": (3, 3, 264, 128),
    "conv2_2": (3, 3, 128, 64),
    "conv2_3": (3, 3, 64, 32),
    "conv2_4": (3, 3, 32, 1),
}


def numpy_generator(sources: np.ndarray, weights: dict[str, tuple[np.ndarray, np.ndarray]]):
    """U2Fusion in float64 NumPy, written from the paper/issue text, independent of Keras."""

    def conv(x, name, leaky=True):
        kernel, bias = (w.astype(np.float64) for w in weights[name])
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
        windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))
        y = np.einsum("bhwcij,ijco->bhwo", windows, kernel) + bias
        return np.maximum(y, 0.2 * y) if leaky else y

    x = conv(sources.astype(np.float64), "conv1_1")
    for k in range(1, 6):
        x = np.concatenate([conv(x, f"dense_block_conv{k}"), x], axis=-1)
    for name in ("conv2_1", "conv2_2", "conv2_3"):
        x = conv(x, name)
    return np.tanh(conv(x, "conv2_4", leaky=False)) / 2 + 0.5


def test_parameter_count_and_layer_shapes():
    model = U2FusionNet()
    assert model.count_params() == 659_217
    shapes = {name: tuple(conv.kernel.shape) for name, conv in model.named_convolutions().items()}
    assert shapes == EXPECTED_KERNELS
    assert all(conv.use_bias for conv in model.named_convolutions().values())


def test_forward_matches_float64_numpy_on_odd_non_square_input(random_model):
    rng = np.random.default_rng(1)
    sources = rng.uniform(0, 1, (2, 13, 22, 2)).astype(np.float32)
    weights = {
        name: (conv.kernel.numpy(), conv.bias.numpy())
        for name, conv in random_model.named_convolutions().items()
    }
    expected = numpy_generator(sources, weights)
    got = random_model(sources).numpy()
    assert got.shape == (2, 13, 22, 1)
    assert expected.std() > 0.05, "the random weights should give a non-trivial output"
    np.testing.assert_allclose(got, expected, atol=2e-5)
    np.testing.assert_allclose(random_model.infer(sources).numpy(), expected, atol=2e-5)


def test_source_order_matters(random_model):
    """I1 and I2 enter on fixed channels; swapping them changes the output."""
    rng = np.random.default_rng(2)
    sources = rng.uniform(0, 1, (1, 9, 9, 2)).astype(np.float32)
    swapped = sources[..., ::-1].copy()
    assert np.abs(random_model(sources) - random_model(swapped)).max() > 1e-3


@pytest.mark.parametrize("shape", [(1, 2, 2, 2), (3, 2, 5, 2), (4, 7, 3, 2)])
def test_any_size_from_2x2_and_any_batch(random_model, shape):
    out = random_model.infer(np.full(shape, 0.5, np.float32)).numpy()
    assert out.shape == (*shape[:3], 1)
    assert np.all((out >= 0) & (out <= 1))


def test_receptive_radius_is_ten_pixels(random_model):
    """Changing one input pixel changes outputs exactly up to RECEPTIVE_RADIUS pixels away."""
    rng = np.random.default_rng(3)
    sources = rng.uniform(0, 1, (1, 41, 41, 2)).astype(np.float32)
    changed = sources.copy()
    changed[0, 20, 20, :] += 0.5
    diff = np.abs(random_model(changed).numpy() - random_model(sources).numpy())[0, :, :, 0]
    rows = np.nonzero(diff.max(axis=1) > 0)[0]
    assert rows.min() == 20 - RECEPTIVE_RADIUS and rows.max() == 20 + RECEPTIVE_RADIUS
