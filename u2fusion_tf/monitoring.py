"""Watching a training run: callbacks that `training.Trainer` calls at its events, in the spirit of
Keras callbacks, so that what is recorded (TensorBoard here) is separate from what is trained.

`Callback` names the events, each a method doing nothing; a subclass overrides those it needs.
`TensorBoard` writes the run's curves and pictures into the run folder under the tags the README
lists: ``loss/{total,ssim,mse,lambda_ewc}`` and ``degrees/{w1,w2}`` every step, ``val/<task>``
and ``images/{source1,source2,fused}`` at every validation, ``ewc/fisher`` after every task.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

SHOWN_IMAGES = 3
"""Held-out patches shown at a validation."""


class Callback:
    """The events of a training run; each method does nothing unless overridden."""

    def on_step_end(self, step: int, losses: Mapping[str, tf.Tensor], degrees: tf.Tensor) -> None:
        """After global step `step`: its losses and its batch's mean degrees [w1, w2]."""

    def on_validation_end(
        self,
        step: int,
        losses: Mapping[str, tf.Tensor],
        sources: np.ndarray,
        fused: tf.Tensor,
    ) -> None:
        """L_sim on the held-out patches of each task learnt so far, and the held-out sources
        and fused patches of the last of them."""

    def on_fisher_end(self, step: int, fisher: list[tf.Tensor]) -> None:
        """The Fisher information averaged over the tasks learnt so far (Eq. 9), per weight."""

    def on_train_end(self) -> None:
        """The run (or this call of it) is over."""


class TensorBoard(Callback):
    """Writes the run's TensorBoard events into `folder`."""

    def __init__(self, folder: str):
        self.writer = tf.summary.create_file_writer(folder)

    def on_step_end(self, step: int, losses: Mapping[str, tf.Tensor], degrees: tf.Tensor) -> None:
        with self.writer.as_default(step=step):
            for name in ("total", "ssim", "mse", "lambda_ewc"):
                tf.summary.scalar(f"loss/{name}", losses[name])
            tf.summary.scalar("degrees/w1", degrees[0])
            tf.summary.scalar("degrees/w2", degrees[1])

    def on_validation_end(
        self,
        step: int,
        losses: Mapping[str, tf.Tensor],
        sources: np.ndarray,
        fused: tf.Tensor,
    ) -> None:
        with self.writer.as_default(step=step):
            for task, loss in losses.items():
                tf.summary.scalar(f"val/{task}", loss)
            shown = slice(0, SHOWN_IMAGES)
            tf.summary.image("images/source1", sources[shown, :, :, :1], max_outputs=SHOWN_IMAGES)
            tf.summary.image("images/source2", sources[shown, :, :, 1:], max_outputs=SHOWN_IMAGES)
            tf.summary.image("images/fused", fused[shown], max_outputs=SHOWN_IMAGES)
        self.writer.flush()

    def on_fisher_end(self, step: int, fisher: list[tf.Tensor]) -> None:
        with self.writer.as_default(step=step):
            tf.summary.histogram("ewc/fisher", tf.concat([tf.reshape(m, [-1]) for m in fisher], 0))

    def on_train_end(self) -> None:
        self.writer.flush()
