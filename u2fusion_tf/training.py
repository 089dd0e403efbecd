"""Training U2Fusion: three tasks learnt in sequence with elastic weight consolidation (Sec. 3.5).

The library of ``python -m u2fusion_tf.train`` (`u2fusion_tf.train`), also used by the bench.

For each task (multi-modal -> multi-exposure -> multi-focus by default), a custom loop with a
`tf.function` step minimises L = L_sim + lambda * L_ewc (Eq. 3, 6, 7) with RMSProp, clipping every
weight to [-clip, clip] after each step, and swapping the two sources' order at random per batch.
After a task, the weights become theta* and the diagonal Fisher information mu is measured on
the data of every task learnt so far (Eqs. 8-9), which anchors the following tasks.

The preservation degrees come from the information measure stored with the patches
(`u2fusion_tf.data`), or from running VGG16 in the step with ``--measure_online``. The batches
come from the HDF5 files through the `tf.data` pipeline of `u2fusion_tf.data`; the step runs
under a `tf.distribute` strategy (``--strategy``, `u2fusion_tf.distribute`), one device or many
replicas, which take the same step on the same global batch.

A run folder (``--run_dir``) holds everything needed to resume:

    ckpt/                     tf.train.CheckpointManager: model, optimizer, EWC state, progress
    ckpt-worker<k>/           the same, kept by worker k > 0 of a multi-worker run
    task<k>-<task>.weights.h5 the final weights of each task (loadable by the fuse tool)
    events.out.tfevents.*     TensorBoard: loss/*, degrees/*, val/<task>, images, ewc/fisher

Running the same command again resumes where the last checkpoint left off (at most
``--checkpoint_minutes`` of work is lost); finished tasks are not redone.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from u2fusion_tf.checkpoints import RunState
from u2fusion_tf.config import TrainConfig
from u2fusion_tf.data import PatchFiles, epoch_dataset, swap_sources
from u2fusion_tf.distribute import (
    any_worker,
    checkpoint_folder,
    describe,
    is_chief,
    make_strategy,
)
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.ewc import ElasticWeightConsolidation, fisher_diagonal, mean_fisher
from u2fusion_tf.features import (
    VGGFeatureHead,
    information_measure,
    preservation_degrees,
)
from u2fusion_tf.files import write_atomically
from u2fusion_tf.losses import similarity_loss, total_loss
from u2fusion_tf.model import U2FusionNet
from u2fusion_tf.monitoring import Callback, TensorBoard
from u2fusion_tf.runs import CONFIG_FILE, fisher_name, task_weights_name
from u2fusion_tf.weights import save_weights

logger = logging.getLogger(__name__)

DEGENERATE_SPREAD = 1e-3
"""Below this spread of w1 (90th minus 10th percentile over a task's patches) the degrees are
all but fixed: c does not suit the information measure the data was prepared with."""


class AuthorsRMSprop(keras.optimizers.RMSprop):
    """RMSProp as TF1's ``tf.train.RMSPropOptimizer``, which the authors trained with: the running
    mean square starts at 1 (Keras starts it at 0, which makes the first steps sign-like jumps of
    about lr / sqrt(1 - rho)) and epsilon is 1e-10."""

    def __init__(self, learning_rate: float, rho: float, momentum: float):
        super().__init__(learning_rate, rho=rho, momentum=momentum, epsilon=1e-10)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        for velocity in self._velocities:
            velocity.assign(tf.ones_like(velocity))


class TaskData:
    """A task's patch files split into training rows, read as training goes, and held-out
    validation patches, kept in memory."""

    def __init__(self, task: str, files: PatchFiles, validation_patches: int, seed: int):
        order = np.random.default_rng(seed).permutation(len(files))
        held_out = np.sort(order[: min(validation_patches, len(order) // 10)])
        self.task = task
        self.files = files
        self.train_rows = np.sort(order[len(held_out) :])
        self.train_information = files.information[self.train_rows]
        self.val_sources, self.val_information = files.read(held_out)

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sources and information of training patches by their index among them."""
        return self.files.read(self.train_rows[indices])

    def batches_per_epoch(self, batch_size: int) -> int:
        return len(self.train_rows) // batch_size  # the remainder is dropped, as the authors did


def fisher_batch_indices(
    rng: np.random.Generator, count: int, batches: int, batch_size: int
) -> list[np.ndarray]:
    """The patches of each Fisher batch, as the authors draw them: the training patches are
    shuffled, and every batch is a slice of `batch_size` at a random start of that order."""
    order = rng.permutation(count)
    starts = rng.integers(0, max(1, count - batch_size + 1), size=batches)
    return [order[start : start + batch_size] for start in starts]


def make_reproducible(seed: int, deterministic: bool) -> None:
    """Seeds Python, NumPy and TensorFlow (the initial weights) from `seed`, and with
    `deterministic` makes TensorFlow's ops bit-reproducible for the rest of the process: with
    the seeded data order, a rerun, or a killed run resumed, ends with identical weights."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


class Trainer:
    """Trains the tasks of a `TrainConfig` in order, checkpointing so that a rerun resumes.

    Its parts, each usable alone: the loss (`losses`) and the step (`make_train_step`); where
    the run stands and its checkpoints (`checkpoints.RunState`, ``state``); what is recorded
    (`monitoring.Callback`s: TensorBoard in the chief, and any given); the validation
    (`validation_losses`); and the Fisher pass after each task (`fisher_pass`, with EWC)."""

    def __init__(
        self,
        config: TrainConfig,
        log: Callable[[str], None] = logger.info,
        callbacks: Sequence[Callback] = (),
    ):
        config.validate()
        self.config = config
        self.log = log
        make_reproducible(config.seed, config.deterministic)
        self.strategy = make_strategy(config.strategy, config.join_timeout, log)
        self.replicas = self.strategy.num_replicas_in_sync
        if config.batch_size % self.replicas:
            raise U2FusionError(
                f"--batch_size {config.batch_size}: not a multiple of the {self.replicas} "
                "replicas (each takes an equal piece of every batch)"
            )
        self.chief = is_chief(self.strategy)
        with self.strategy.scope():
            self.model = U2FusionNet(config.precision)
            self.ewc = ElasticWeightConsolidation(self.model)
            self.vgg = (
                VGGFeatureHead(
                    config.vgg_weights, seed=config.vgg_seed, precision=config.vgg_precision
                )
                if config.measure_online
                else None
            )
            self.optimizer = self._fresh_optimizer()
        self.state = RunState(
            checkpoint_folder(self.strategy, config.run_dir),
            model=self.model,
            optimizer=self.optimizer,
            ewc=self.ewc,
        )
        self.callbacks = [TensorBoard(config.run_dir)] if self.chief else []
        self.callbacks += callbacks
        self.data: dict[str, TaskData] = {}

    def _fresh_optimizer(self) -> AuthorsRMSprop:
        optimizer = AuthorsRMSprop(self.config.learning_rate, self.config.rho, self.config.momentum)
        optimizer.build(self.model.trainable_variables)
        return optimizer

    def _reset_optimizer(self) -> None:
        """Fresh optimizer state for a new task (the authors built a new RMSProp per task)."""
        with self.strategy.scope():
            fresh = self._fresh_optimizer()
        for old, new in zip(self.optimizer.variables, fresh.variables, strict=True):
            old.assign(new)

    def task_data(self, task: str) -> TaskData:
        if task not in self.data:
            if task not in self.config.data_files:
                raise U2FusionError(f"data_files: no file for the task {task}")
            path = self.config.data_files[task]
            files = PatchFiles(path, task)
            files.require_valid_values()
            self.require_same_head(path, files.attrs)
            self.data[task] = TaskData(
                task, files, self.config.validation_patches, self.config.seed
            )
        return self.data[task]

    def require_same_head(self, path: str, attrs: dict) -> None:
        """Refuses data whose stored g came from another VGG16 head than --vgg_weights names: its
        degrees would silently be another head's (e.g. all 0.5 with the paper's c)."""
        stored = (str(attrs.get("vgg_weights")), int(attrs.get("vgg_seed", 0)))
        wanted = (self.config.vgg_weights, self.config.vgg_seed)
        if stored[0] != "none":
            stored, wanted = stored[:1], wanted[:1]  # the seed only matters for untrained heads
        if stored != wanted:
            raise U2FusionError(
                f"{path}: prepared with the VGG16 head --vgg_weights {stored[0]}"
                + (f" (seed {stored[1]})" if len(stored) > 1 else "")
                + f", but training uses --vgg_weights {self.config.vgg_weights}"
                + (f" (seed {self.config.vgg_seed})" if len(stored) > 1 else "")
                + "; train with the same head or prepare the data again"
            )

    def check_degrees(self, task: str, data: TaskData, c: float) -> None:
        """Logs the w1 percentiles of the task's training patches and stops when they are all
        but equal (unless the fixed-degrees ablation asks for that)."""
        information = data.train_information
        w1 = preservation_degrees(information[:, 0], information[:, 1], c).numpy()[:, 0]
        p10, p50, p90 = np.percentile(w1, [10, 50, 90])
        self.log(
            f"{task}: w1 at the 10th / 50th / 90th percentile {p10:.3g} / {p50:.3g} / {p90:.3g}"
            f" with c = {c:g}"
        )
        if p90 - p10 < DEGENERATE_SPREAD and not self.config.fixed_degrees:
            raise U2FusionError(
                f"{self.config.data_files[task]}: with c = {c:g} the preservation degrees hardly "
                f"vary (w1 from {p10:.5f} to {p90:.5f}), i.e. fixed weights; choose c near the "
                "typical |g1 - g2| of this data (checkpoints/README.md), or pass --fixed_degrees"
            )

    def weights_path(self, index: int) -> str:
        return os.path.join(
            self.config.run_dir, task_weights_name(index + 1, self.config.task_order[index])
        )

    # --- the loss, as the paper writes it ---------------------------------------------------

    def degrees(self, sources: tf.Tensor, information: tf.Tensor, c: float) -> tf.Tensor:
        """[w1, w2] of each pair (Eq. 2), or 0.5 each for the fixed-weights ablation."""
        if self.config.fixed_degrees:
            return tf.fill([tf.shape(sources)[0], 2], 0.5)
        if self.vgg is not None:
            information = tf.stack(
                [information_measure(self.vgg, sources[..., i : i + 1]) for i in (0, 1)], axis=-1
            )
        return preservation_degrees(information[:, 0], information[:, 1], c)

    def losses(
        self, sources: tf.Tensor, information: tf.Tensor, c: float, training: bool
    ) -> tuple[dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
        """L (Eq. 3) with its terms L_sim (Eq. 6), L_ssim, L_mse and lambda * L_ewc (Eq. 7) as it
        enters L ("lambda_ewc"); the degrees (B, 2); and the fused batch."""
        config = self.config
        degrees = self.degrees(sources, information, c)
        fused = self.model(sources, training=training)
        similarity = similarity_loss(fused, sources, degrees, config.alpha, config.mse_weighting)
        ewc = self.ewc.penalty(self.model)
        lam = config.ewc_lambda
        losses = {
            "total": total_loss(similarity["total"], ewc, lam),
            "sim": similarity["total"],
            "ssim": similarity["ssim"],
            "mse": similarity["mse"],
            "lambda_ewc": lam * ewc,
        }
        return losses, degrees, fused

    def make_train_step(
        self, c: float
    ) -> Callable[[tf.Tensor, tf.Tensor], tuple[dict[str, tf.Tensor], tf.Tensor]]:
        """One step on a batch (on several replicas, each replica's piece of it): the gradient
        of L, RMSProp, and every weight clipped to [-clip, clip]; returns the losses and the
        batch's mean degrees [w1, w2].

        Each replica's L is its piece's mean divided by the number of replicas, which the summed
        gradients turn into the global-batch mean (`tf.nn.compute_average_loss`'s rule); the EWC
        term, the same on every replica, is divided likewise so that it counts once per step
        (`tf.nn.scale_regularization_loss`'s rule)."""
        variables = self.model.trainable_variables
        clip = self.config.clip
        replicas = self.replicas

        def replica_step(sources, information):
            with tf.GradientTape() as tape:
                losses, degrees, _ = self.losses(sources, information, c, training=True)
                objective = losses["total"] / replicas
            gradients = tape.gradient(objective, variables)
            self.optimizer.apply_gradients(zip(gradients, variables, strict=True))  # summed
            return losses, tf.reduce_mean(degrees, axis=0)

        @tf.function
        def train_step(sources, information):
            losses, degrees = self.strategy.run(replica_step, args=(sources, information))
            for variable in variables:  # the same on every replica
                variable.assign(tf.clip_by_value(variable, -clip, clip))
            mean = tf.distribute.ReduceOp.MEAN
            return (
                {k: self.strategy.reduce(mean, v, axis=None) for k, v in losses.items()},
                self.strategy.reduce(mean, degrees, axis=None),
            )

        return train_step

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> str:
        """Trains the remaining tasks; returns the final weights file of the last task trained."""
        config = self.config
        self.log(f"training with {describe(self.strategy)}")
        self.record_settings()
        state = self.state
        resumed = state.resume(self.log)
        if resumed:
            self.log(
                f"resumed from {resumed}: task {int(state.task_index) + 1}, "
                f"epoch {int(state.epoch) + 1}, step {int(state.step_in_epoch)}"
            )
        tasks_this_call = 0
        while int(state.task_index) < len(config.task_order):
            if config.stop_after_tasks and tasks_this_call >= config.stop_after_tasks:
                self.log(f"stopping after {tasks_this_call} task(s) as asked; rerun to continue")
                break
            self.train_task(int(state.task_index))
            tasks_this_call += 1
        for callback in self.callbacks:
            callback.on_train_end()
        return self.weights_path(int(state.task_index) - 1)

    def record_settings(self) -> None:
        """Writes this call's settings to ``<run_dir>/config.json``, refusing to resume a run
        whose tasks came in another order (its progress counts tasks in that order)."""
        path = os.path.join(self.config.run_dir, CONFIG_FILE)
        if self.state.latest and os.path.isfile(path):
            with open(path) as stream:
                earlier = json.load(stream)["task_order"]
            if earlier != list(self.config.task_order):
                raise U2FusionError(
                    f"{path}: this run learns the tasks in the order {', '.join(earlier)}; "
                    "resume it with the same --tasks, or start a new --run_dir"
                )
        os.makedirs(self.config.run_dir, exist_ok=True)
        if not self.chief:
            return
        settings = {**dataclasses.asdict(self.config), "task_order": list(self.config.task_order)}
        write_atomically(path, json.dumps(settings, indent=2).encode())

    def train_task(self, index: int) -> None:
        """Trains task `index` from where its progress stands, then keeps its weights and
        measures the Fisher information."""
        config = self.config
        task = config.task_order[index]
        data = self.task_data(task)
        c = config.c[task]
        per_epoch = data.batches_per_epoch(config.batch_size)
        if per_epoch == 0:
            raise U2FusionError(
                f"{config.data_files[task]}: fewer patches than one batch of {config.batch_size}"
            )
        if config.max_batches.get(task):
            per_epoch = min(per_epoch, config.max_batches[task])
        self.check_degrees(task, data, c)
        state = self.state
        if int(state.epoch) == 0 and int(state.step_in_epoch) == 0:
            self._reset_optimizer()
        self.log(
            f"task {index + 1}/{len(config.task_order)} {task}: {len(data.train_rows)} patches, "
            f"{per_epoch} steps x {config.epochs[task]} epochs, c = {c:g}"
        )
        train_step = self.make_train_step(c)
        self.last_save = time.monotonic()
        while int(state.epoch) < config.epochs[task]:
            self.train_epoch(index, data, train_step, per_epoch)
            state.epoch.assign_add(1)
            state.step_in_epoch.assign(0)
            self.save_checkpoint()
        self.finish_task(index)

    def train_epoch(self, index: int, data: TaskData, train_step: Callable, per_epoch: int) -> None:
        """The epoch's batches (a seeded shuffle, half of them with the sources swapped) from
        the step its progress stands at, read by the `tf.data` pipeline, each replica given its
        piece."""
        config = self.config
        seed = [config.seed, index, int(self.state.epoch)]
        self.epoch_started, first = time.monotonic(), int(self.state.step_in_epoch)
        batches = self.strategy.distribute_datasets_from_function(
            lambda context: epoch_dataset(
                data.files,
                data.train_rows,
                config.batch_size,
                seed,
                first,
                self.replicas,
                context.input_pipeline_id,
                context.num_input_pipelines,
            )
        )
        for step, (sources, information) in zip(range(first, per_epoch), batches, strict=False):
            losses, degrees = train_step(sources, information)
            self.after_step(index, step, per_epoch, step + 1 - first, losses, degrees)

    def after_step(
        self, index: int, step: int, per_epoch: int, done: int, losses: dict, degrees: tf.Tensor
    ) -> None:
        """The bookkeeping of a step: stop on a non-finite loss, count it, and log, validate
        and checkpoint when their time comes."""
        config, state = self.config, self.state
        task, epoch = config.task_order[index], int(state.epoch)
        if not np.isfinite(float(losses["total"])):
            raise U2FusionError(
                f"task {task}, epoch {epoch + 1}, step {step + 1}: the loss is not finite; "
                f"stopped, the last good checkpoint is {state.latest}"
            )
        state.step_in_epoch.assign(step + 1)
        state.global_step.assign_add(1)
        for callback in self.callbacks:
            callback.on_step_end(int(state.global_step), losses, degrees)
        if (step + 1) % config.log_every == 0 or step + 1 == per_epoch:
            rate = done / (time.monotonic() - self.epoch_started)
            self.log(
                f"step {int(state.global_step)} task {task} epoch {epoch + 1}/"
                f"{config.epochs[task]} batch {step + 1}/{per_epoch} "
                f"loss {float(losses['total']):.4f} (ssim {float(losses['ssim']):.4f} "
                f"mse {float(losses['mse']):.5f} lambda*ewc {float(losses['lambda_ewc']):.3g}) "
                f"{rate:.2f} steps/s"
            )
        if config.validate_every and int(state.global_step) % config.validate_every == 0:
            self.validate(index)
        due = time.monotonic() - self.last_save > 60 * config.checkpoint_minutes
        if any_worker(self.strategy, due):  # every worker saves, together
            self.save_checkpoint()

    def finish_task(self, index: int) -> None:
        """Keeps the task's final weights, measures the Fisher information and moves on."""
        task = self.config.task_order[index]
        self.require_finite_weights()
        self.validate(index)
        if self.chief:
            save_weights(self.model, self.weights_path(index))
        self.log(f"task {task} done: {self.weights_path(index)}")
        if index + 1 < len(self.config.task_order) or self.config.fisher_after_last_task:
            self.consolidate(index)
        self.state.task_index.assign_add(1)
        self.state.epoch.assign(0)
        self.state.step_in_epoch.assign(0)
        self.save_checkpoint()

    def require_finite_weights(self) -> None:
        """Stops before saving broken weights, so that the last good checkpoint stays the latest."""
        if not all(np.isfinite(v.numpy()).all() for v in self.model.trainable_variables):
            raise U2FusionError(
                f"step {int(self.state.global_step)}: the weights are not finite; stopped, "
                f"the last good checkpoint is {self.state.latest}"
            )

    def save_checkpoint(self) -> None:
        self.require_finite_weights()
        self.state.save()
        self.last_save = time.monotonic()

    def consolidate(self, index: int) -> None:
        """theta* <- current weights; mu <- Fisher averaged over the tasks learnt so far (Eq. 9).

        mu is measured after every task but the last (unless `fisher_after_last_task`), also
        without EWC (where lambda = 0 leaves it unused), so the importance of the weights can be
        compared (the paper's Fig. 19): the run folder keeps it as ``fisher-task<k>.npz``."""
        config = self.config
        started = time.monotonic()
        rng = np.random.default_rng([config.seed, index, 99])  # one stream: tasks drawn apart
        learnt = config.task_order[: index + 1]
        fishers = fisher_pass(
            self.model,
            lambda batch, c: self.losses(*batch, c, training=False)[0]["sim"],
            [(self.task_data(task), config.c[task]) for task in learnt],
            rng,
            config.fisher_batches,
            config.fisher_batch_size,
            self.log,
        )
        mu = mean_fisher(fishers)
        if index + 1 < len(config.task_order):
            self.ewc.consolidate(self.model, fishers)
        if self.chief:
            variables = self.model.trainable_variables
            np.savez(
                os.path.join(config.run_dir, fisher_name(index + 1)),
                **{v.path: m.numpy() for v, m in zip(variables, mu, strict=True)},
            )
        for callback in self.callbacks:
            callback.on_fisher_end(int(self.state.global_step), mu)
        self.log(
            f"EWC: Fisher of {index + 1} task(s) measured in {time.monotonic() - started:.0f} s"
        )

    def validate(self, index: int) -> None:
        """Validates the tasks learnt so far (`validation_losses`) for the callbacks."""
        learnt = self.config.task_order[: index + 1]
        losses, sources, fused = validation_losses(
            self.losses, [(self.task_data(task), self.config.c[task]) for task in learnt]
        )
        for callback in self.callbacks:
            callback.on_validation_end(int(self.state.global_step), losses, sources, fused)


LossFunction = Callable[..., tuple[dict[str, tf.Tensor], tf.Tensor, tf.Tensor]]
"""`Trainer.losses`: (sources, information, c, training) -> (losses, degrees, fused)."""


def validation_losses(
    losses: LossFunction, tasks: Sequence[tuple[TaskData, float]]
) -> tuple[dict[str, tf.Tensor], np.ndarray, tf.Tensor]:
    """L_sim on the held-out patches of each (task data, c) (the paper's Fig. 18), by task;
    with the held-out sources and their fused patches of the last task."""
    by_task = {}
    for data, c in tasks:
        sources = data.val_sources
        values, _, fused = losses(
            tf.constant(sources), tf.constant(data.val_information), c, training=False
        )
        by_task[data.task] = values["sim"]
    return by_task, sources, fused


def fisher_pass(
    model: keras.Model,
    similarity: Callable[[tuple[tf.Tensor, tf.Tensor], float], tf.Tensor],
    tasks: Sequence[tuple[TaskData, float]],
    rng: np.random.Generator,
    batches: int,
    batch_size: int,
    log: Callable[[str], None] | None = None,
) -> list[list[tf.Tensor]]:
    """The diagonal Fisher information (Eq. 8) of `model` on each (task data, c), from the
    squared gradients of L_sim (`similarity` of a batch and c) on `batches` batches drawn by
    `fisher_batch_indices` from `rng`, each with its sources swapped at random, as in training;
    one progress line per task with `log`."""
    fishers = []
    for number, (data, c) in enumerate(tasks, 1):
        if log is not None:
            log(
                f"EWC: Fisher information of task {number}/{len(tasks)} ({data.task}), "
                f"{batches} batches of {batch_size}"
            )
        drawn = []
        for picked in fisher_batch_indices(rng, len(data.train_rows), batches, batch_size):
            sources, information = swap_sources(*data.read(picked), rng.random() < 0.5)
            drawn.append((tf.constant(sources), tf.constant(information)))

        def loss_fn(model, batch, c=c):
            """L_sim, whose squared gradient Eq. 8 averages."""
            return similarity(batch, c)

        fishers.append(fisher_diagonal(model, loss_fn, drawn))
    return fishers
