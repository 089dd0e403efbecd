"""EWC (Eqs. 7-9): the penalty, the Fisher information and consolidation, against NumPy."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from u2fusion_tf.ewc import ElasticWeightConsolidation, fisher_diagonal

RNG = np.random.default_rng(8)


@pytest.fixture
def tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.layers[0].kernel.assign(RNG.normal(size=(3, 2)).astype(np.float32))
    model.layers[0].bias.assign(RNG.normal(size=2).astype(np.float32))
    return model


def quadratic_loss(model, batch):
    """L = mean over the batch of sum((W x + b - t)^2), whose gradient is known in closed form."""
    x, t = batch
    return tf.reduce_mean(tf.reduce_sum(tf.square(model(x) - t), axis=-1))


def numpy_gradients(model, x, t):
    kernel, bias = (v.numpy() for v in model.trainable_variables)
    residual = x @ kernel + bias - t  # (B, 2)
    return [2 * x.T @ residual / len(x), 2 * residual.mean(0)]


def make_batches(n):
    return [
        (RNG.normal(size=(4, 3)).astype(np.float32), RNG.normal(size=(4, 2)).astype(np.float32))
        for _ in range(n)
    ]


def test_fisher_is_the_mean_squared_batch_gradient(tiny_model):
    batches = make_batches(5)
    got = fisher_diagonal(tiny_model, quadratic_loss, batches)
    expected = [
        np.mean([numpy_gradients(tiny_model, x, t)[i] ** 2 for x, t in batches], axis=0)
        for i in (0, 1)
    ]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g.numpy(), e, rtol=1e-5)


def test_penalty_and_consolidation(tiny_model):
    ewc = ElasticWeightConsolidation(tiny_model)
    assert float(ewc.penalty(tiny_model)) == 0.0
    fishers = [fisher_diagonal(tiny_model, quadratic_loss, make_batches(3)) for _ in range(2)]
    ewc.consolidate(tiny_model, fishers)
    assert int(ewc.tasks) == 2
    for index, mu in enumerate(ewc.fisher):
        np.testing.assert_allclose(
            mu.numpy(), (fishers[0][index] + fishers[1][index]).numpy() / 2, rtol=1e-6
        )
    assert float(ewc.penalty(tiny_model)) == 0.0, "no penalty at theta*"
    anchors = [v.numpy().copy() for v in tiny_model.trainable_variables]
    shift = [RNG.normal(size=v.shape).astype(np.float32) for v in anchors]
    for variable, delta in zip(tiny_model.trainable_variables, shift, strict=True):
        variable.assign_add(delta)
    expected = 0.5 * sum(
        float(np.sum(mu.numpy() * d**2)) for mu, d in zip(ewc.fisher, shift, strict=True)
    )
    assert float(ewc.penalty(tiny_model)) == pytest.approx(expected, rel=1e-5)


def test_checkpoint_round_trip(tiny_model, tmp_path):
    ewc = ElasticWeightConsolidation(tiny_model)
    ewc.consolidate(tiny_model, [fisher_diagonal(tiny_model, quadratic_loss, make_batches(2))])
    path = tf.train.Checkpoint(ewc=ewc).save(str(tmp_path / "ckpt"))
    restored = ElasticWeightConsolidation(tiny_model)
    tf.train.Checkpoint(ewc=restored).restore(path).assert_consumed()
    assert int(restored.tasks) == 1
    for a, b in zip(ewc.fisher + ewc.anchors, restored.fisher + restored.anchors, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
