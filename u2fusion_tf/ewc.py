"""Elastic weight consolidation: learning a new task without forgetting the earlier ones
(paper Sec. 3.5, Eqs. 3, 7-9).

After a task, the weights theta* are kept, and the importance of each weight for the tasks learnt
so far is measured by the diagonal of the Fisher information (Eq. 8),

    mu_i = E[(dL_sim / dtheta_i)^2] at theta*,

averaged over the tasks learnt so far (Eq. 9). While the next task is learnt, the loss gains
(Eq. 7, with L = L_sim + lambda L_ewc in Eq. 3)

    L_ewc = 1/2 * sum_i mu_i (theta_i - theta*_i)^2,  lambda = 8e4.

As in the authors' code, the expectation is over batches: each of `config.FISHER_BATCHES` batches of
`FISHER_BATCH_SIZE` patches per task gives one gradient of the batch's L_sim, which is squared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import keras
import tensorflow as tf


def fisher_diagonal(
    model: keras.Model, loss_fn: Callable[[keras.Model, object], tf.Tensor], batches: Iterable
) -> list[tf.Tensor]:
    """Eq. 8: the mean over `batches` of the squared gradient of `loss_fn(model, batch)`, one
    tensor per trainable variable of `model`."""
    variables = model.trainable_variables

    @tf.function
    def squared_gradients(batch):
        with tf.GradientTape() as tape:
            loss = loss_fn(model, batch)
        return [tf.square(g) for g in tape.gradient(loss, variables)]

    total, count = [tf.zeros_like(v) for v in variables], 0
    for batch in batches:
        total = [t + s for t, s in zip(total, squared_gradients(batch), strict=True)]
        count += 1
    if count == 0:
        raise ValueError("the Fisher information needs at least one batch")
    return [t / count for t in total]


class ElasticWeightConsolidation(tf.Module):
    """theta* and mu of the tasks learnt so far; checkpointable with `tf.train.Checkpoint`."""

    def __init__(self, model: keras.Model):
        super().__init__(name="ewc")
        variables = model.trainable_variables
        self.anchors = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.fisher = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.tasks = tf.Variable(0, dtype=tf.int64, trainable=False)

    def penalty(self, model: keras.Model) -> tf.Tensor:
        """L_ewc = 1/2 sum_i mu_i (theta_i - theta*_i)^2 (Eq. 7 without lambda); 0 before any
        consolidation, since mu is 0 then."""
        terms = [
            tf.reduce_sum(mu * tf.square(theta - anchor))
            for mu, theta, anchor in zip(
                self.fisher, model.trainable_variables, self.anchors, strict=True
            )
        ]
        return 0.5 * tf.add_n(terms)

    def consolidate(self, model: keras.Model, task_fishers: Sequence[Sequence[tf.Tensor]]) -> None:
        """theta* <- the current weights; mu <- the mean of the Fishers of the tasks learnt so
        far, each measured on that task's data at the current weights (Eq. 9)."""
        for anchor, theta in zip(self.anchors, model.trainable_variables, strict=True):
            anchor.assign(theta)
        for mu, mean in zip(self.fisher, mean_fisher(task_fishers), strict=True):
            mu.assign(mean)
        self.tasks.assign(len(task_fishers))


def mean_fisher(task_fishers: Sequence[Sequence[tf.Tensor]]) -> list[tf.Tensor]:
    """Eq. 9: mu, the mean of the tasks' Fisher diagonals, one tensor per variable."""
    per_variable = zip(*task_fishers, strict=True)
    return [tf.add_n(list(fishers)) / len(task_fishers) for fishers in per_variable]
