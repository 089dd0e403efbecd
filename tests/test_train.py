"""The training loop: optimizer, clipping, source swaps, one step, the three-task run and resume."""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import signal
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from u2fusion_tf.catalogue import PAPER_EPOCHS, TASK_C, TASKS
from u2fusion_tf.config import LAMBDA, TrainConfig
from u2fusion_tf.data import PatchFiles, swap_sources
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.model import U2FusionNet
from u2fusion_tf.monitoring import Callback
from u2fusion_tf.train import without_determinism_hint
from u2fusion_tf.training import (
    AuthorsRMSprop,
    TaskData,
    Trainer,
    fisher_batch_indices,
    fisher_pass,
    validation_losses,
)
from u2fusion_tf.variants import LAMBDA_SWEEP
from u2fusion_tf.weights import load_model

RNG = np.random.default_rng(5)


@pytest.fixture
def tiny_config(tmp_path, tiny_run):
    return tiny_run(tmp_path / "run", log_every=1)


def test_authors_rmsprop_matches_tf1_formula():
    variable = tf.Variable([1.0, -2.0])
    gradient = tf.constant([0.3, -0.1])
    optimizer = AuthorsRMSprop(1e-2, rho=0.6, momentum=0.15)
    optimizer.build([variable])
    expected, ms, mom = np.array([1.0, -2.0]), np.ones(2), np.zeros(2)
    for _ in range(3):
        optimizer.apply_gradients([(gradient, variable)])
        ms = 0.6 * ms + 0.4 * gradient.numpy() ** 2
        mom = 0.15 * mom + 1e-2 * gradient.numpy() / np.sqrt(ms + 1e-10)
        expected = expected - mom
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-6)


def test_swap_keeps_each_source_with_its_information():
    sources = RNG.uniform(0, 1, (3, 4, 4, 2))
    information = RNG.uniform(0, 1, (3, 2))
    swapped, info = swap_sources(sources, information, True)
    np.testing.assert_array_equal(swapped[..., 0], sources[..., 1])
    np.testing.assert_array_equal(info[:, 0], information[:, 1])
    np.testing.assert_array_equal(swapped[..., 1], sources[..., 0])
    np.testing.assert_array_equal(info[:, 1], information[:, 0])
    assert swap_sources(sources, information, False)[0] is sources


def test_one_step_lowers_the_loss_and_weights_are_clipped(tiny_config):
    trainer = Trainer(tiny_config, log=lambda _: None)
    data = trainer.task_data("multi-modal")
    sources, information = (tf.constant(array) for array in data.read(np.arange(6)))
    trainer.model.conv2_4.conv.bias.assign([80.0])
    step = trainer.make_train_step(0.1)
    step(sources, information)
    assert float(trainer.model.conv2_4.conv.bias[0]) == 50.0
    trainer.model.conv2_4.conv.bias.assign([0.0])
    before = float(trainer.losses(sources, information, 0.1, training=False)[0]["total"])
    step(sources, information)
    after = float(trainer.losses(sources, information, 0.1, training=False)[0]["total"])
    assert after < before
    for variable in trainer.model.trainable_variables:
        assert np.abs(variable.numpy()).max() <= 50.0


def event_tags(run_dir):
    tags = set()
    for path in glob.glob(os.path.join(run_dir, "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags.update(value.tag for value in event.summary.value)
    return tags


@pytest.fixture(scope="module")
def resumed_run(tiny_run, tmp_path_factory):
    """A three-task run stopped after task 1, then resumed to the end; the log of each call."""
    config = tiny_run(tmp_path_factory.mktemp("resumed") / "run", log_every=1)
    first_log, second_log = [], []
    first = Trainer(dataclasses.replace(config, stop_after_tasks=1), log=first_log.append)
    first.run()
    task1 = os.path.join(config.run_dir, "task1-multi-modal.weights.h5")
    after_first = {
        "task_index": int(first.state.task_index),
        "task2_files": glob.glob(os.path.join(config.run_dir, "task2-*")),
        "task1_stamp": os.path.getmtime(task1),
    }
    second = Trainer(config, log=second_log.append)
    second.run()
    return types.SimpleNamespace(
        config=config,
        after_first=after_first,
        first_log=first_log,
        second_log=second_log,
        second=second,
        task1=task1,
    )


def test_a_call_stops_after_the_tasks_asked(resumed_run):
    assert resumed_run.after_first["task_index"] == 1
    assert os.path.isfile(resumed_run.task1) and not resumed_run.after_first["task2_files"]
    assert any("EWC: Fisher of 1 task(s)" in line for line in resumed_run.first_log)


def test_resuming_in_another_task_order_is_refused(resumed_run):
    reordered = dataclasses.replace(resumed_run.config, task_order=TASKS[::-1])
    with pytest.raises(U2FusionError, match="resume it with the same --tasks"):
        Trainer(reordered, log=lambda _: None).run()


def test_a_rerun_resumes_without_redoing_a_finished_task(resumed_run):
    lines = resumed_run.second_log
    assert any("resumed" in line and "task 2" in line for line in lines)
    assert not any(line.startswith("task 1/3") for line in lines), "task 1 is not redone"
    assert os.path.getmtime(resumed_run.task1) == resumed_run.after_first["task1_stamp"]


def test_every_task_leaves_loadable_weights_and_anchors_the_next(resumed_run):
    run_dir = resumed_run.config.run_dir
    for index, task in enumerate(TASKS, 1):
        load_model(os.path.join(run_dir, f"task{index}-{task}.weights.h5"))
    np.testing.assert_array_equal(
        resumed_run.second.ewc.anchors[0].numpy(),
        load_model(os.path.join(run_dir, "task2-multi-exposure.weights.h5"))
        .trainable_variables[0]
        .numpy(),
    )
    assert float(tf.reduce_sum([tf.reduce_sum(f) for f in resumed_run.second.ewc.fisher])) > 0


def test_the_run_folder_holds_summaries_and_checkpoints(resumed_run, summary_tags):
    run_dir = resumed_run.config.run_dir
    assert set().union(*summary_tags(TASKS)) <= event_tags(run_dir)
    assert glob.glob(os.path.join(run_dir, "ckpt", "ckpt-*.index"))


class Poisoner(Callback):
    """Makes the weights NaN after the first step it sees (of `model`, set after construction),
    as a diverging run would."""

    model = None

    def on_step_end(self, step, losses, degrees):
        for variable in self.model.trainable_variables:
            variable.assign(variable * float("nan"))


class Recorder(Callback):
    """The events of a run, in order, as (event, step)."""

    def __init__(self):
        self.events = []

    def on_step_end(self, step, losses, degrees):
        assert set(losses) >= {"total", "ssim", "mse", "lambda_ewc"} and degrees.shape == (2,)
        self.events.append(("step", step))

    def on_validation_end(self, step, losses, sources, fused):
        assert sources.shape[0] == fused.shape[0] > 0
        self.events.append(("validation " + ",".join(losses), step))

    def on_fisher_end(self, step, fisher):
        self.events.append(("fisher", step))

    def on_train_end(self):
        self.events.append(("end", None))


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tiny_config):
    Trainer(dataclasses.replace(tiny_config, stop_after_tasks=1), log=lambda _: None).run()
    good = tf.train.latest_checkpoint(os.path.join(tiny_config.run_dir, "ckpt"))
    broken = Trainer(tiny_config, log=lambda _: None, callbacks=[Poisoner()])
    broken.callbacks[-1].model = broken.model
    with pytest.raises(U2FusionError, match="not finite"):
        broken.run()
    assert tf.train.latest_checkpoint(os.path.join(tiny_config.run_dir, "ckpt")) == good
    resumed = Trainer(tiny_config, log=lambda _: None)
    resumed.state.checkpoint.restore(good)
    assert int(resumed.state.task_index) == 1
    assert all(np.isfinite(v.numpy()).all() for v in resumed.model.trainable_variables)


def test_validation_and_the_fisher_pass_work_alone(task_files):
    """Outside a `Trainer`: L_sim of the held-out patches by task, and the Fisher diagonal of
    each task, the same for the same draws."""
    tasks = [
        (TaskData(t, PatchFiles(task_files[t], t), 4, 0), 0.1 * (i + 1))
        for i, t in enumerate(TASKS[:2])
    ]

    def losses(sources, information, c, training):
        return {"sim": c * tf.reduce_mean(sources)}, None, sources[..., :1]

    by_task, sources, fused = validation_losses(losses, tasks)
    assert list(by_task) == list(TASKS[:2])
    for data, c in tasks:
        expected = c * data.val_sources.mean()
        np.testing.assert_allclose(float(by_task[data.task]), expected, rtol=1e-6)
    assert sources is tasks[1][0].val_sources and fused.shape == (2, 16, 16, 1)

    model = U2FusionNet()

    def similarity(batch, c):
        return c * tf.reduce_mean(tf.square(model(batch[0]) - batch[0][..., :1]))

    fishers = [
        fisher_pass(model, similarity, tasks, np.random.default_rng(3), 2, 3) for _ in range(2)
    ]
    assert len(fishers[0]) == 2
    for fisher in fishers[0]:
        assert [f.shape for f in fisher] == [v.shape for v in model.trainable_variables]
    for task in range(2):
        for first, again in zip(fishers[0][task], fishers[1][task], strict=True):
            np.testing.assert_array_equal(first.numpy(), again.numpy())
            assert (first.numpy() >= 0).all()
    assert any(float(tf.reduce_max(f)) > 0 for f in fishers[0][1])


def test_missing_data_file(tiny_config):
    config = dataclasses.replace(tiny_config, data_files={t: "/nonexistent.h5" for t in TASKS})
    with pytest.raises(U2FusionError, match=r"nonexistent\.h5: cannot be read"):
        Trainer(config, log=lambda _: None).run()
    with pytest.raises(U2FusionError, match="data_files: no file for the task multi-modal"):
        Trainer(dataclasses.replace(tiny_config, data_files={}), log=lambda _: None).run()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "multi-modal,denoising"], "unknown task(s) denoising"),
        ([], "multi-modal.h5: cannot be read: no such file (prepare it with `make data`)"),
    ],
)
def test_cli_errors(tmp_path, args, message):
    command = [
        sys.executable,
        "-m",
        "u2fusion_tf.train",
        "--data_dir",
        str(tmp_path),
        "--run_dir",
        str(tmp_path / "run"),
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last and "Traceback" not in result.stderr


def test_fisher_batches_are_random_slices_of_the_shuffled_patches():
    """As the authors draw them: not neighbouring patches in file order (one or two images)."""
    draw = [fisher_batch_indices(np.random.default_rng(3), 1000, 30, 18) for _ in range(2)]
    for first, again in zip(*draw, strict=True):
        np.testing.assert_array_equal(first, again)
    batches = draw[0]
    assert len(batches) == 30 and all(len(b) == 18 for b in batches)
    assert all(((b >= 0) & (b < 1000)).all() and len(set(b)) == 18 for b in batches)
    spans = [int(b.max() - b.min()) for b in batches]
    assert min(spans) > 100, "a batch spans the file, not one image's neighbouring patches"
    assert len({tuple(b) for b in batches}) == 30


def test_data_of_another_vgg_head_is_refused(tiny_config):
    for change in ({"vgg_weights": "imagenet"}, {"vgg_seed": 1}):
        config = dataclasses.replace(tiny_config, **change)
        with pytest.raises(U2FusionError, match=r"multi-modal\.h5: prepared with the VGG16 head"):
            Trainer(config, log=lambda _: None).run()


def test_degenerate_degrees_stop_unless_fixed_degrees_is_asked(tiny_config):
    lines = []
    paper_c = dataclasses.replace(tiny_config, c=dict(TASK_C), stop_after_tasks=1)
    with pytest.raises(U2FusionError, match=r"with c = 3200 the preservation degrees hardly vary"):
        Trainer(paper_c, log=lines.append).run()
    assert any("w1 at the 10th / 50th / 90th percentile" in line for line in lines)
    Trainer(dataclasses.replace(paper_c, fixed_degrees=True), log=lambda _: None).run()


def test_batches_per_epoch_cap_and_fisher_saved_after_every_task_if_asked(tiny_config):
    config = dataclasses.replace(
        tiny_config,
        max_batches=dict.fromkeys(TASKS, 1),
        ewc_lambda=0.0,
        validate_every=0,
        fisher_after_last_task=True,
    )
    recorder, lines = Recorder(), []
    trainer = Trainer(config, log=lines.append, callbacks=[recorder])
    trainer.run()
    assert int(trainer.state.global_step) == len(TASKS), "one batch per epoch of each task"
    assert recorder.events == [  # a task's validation at its end, of the tasks learnt so far
        ("step", 1),
        ("validation multi-modal", 1),
        ("fisher", 1),
        ("step", 2),
        ("validation multi-modal,multi-exposure", 2),
        ("fisher", 2),
        ("step", 3),
        ("validation multi-modal,multi-exposure,multi-focus", 3),
        ("fisher", 3),
        ("end", None),
    ]
    progress = [line for line in lines if line.startswith("EWC: Fisher information of task")]
    assert len(progress) == 1 + 2 + 3, "one line per task measured, after each task"
    for index in range(1, len(TASKS) + 1):
        fisher = np.load(os.path.join(config.run_dir, f"fisher-task{index}.npz"))
        assert len(fisher.files) == len(trainer.model.trainable_variables)
        assert all(np.isfinite(fisher[name]).all() for name in fisher.files)
        assert any(fisher[name].max() > 0 for name in fisher.files)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batch_size": 0}, "--batch_size 0: must be at least 1"),
        ({"batch_size": -4}, "--batch_size -4: must be at least 1"),
        ({"log_every": 0}, "--log_every 0: must be at least 1"),
        ({"epochs": {**PAPER_EPOCHS, "multi-focus": 0}}, "--epochs_multi_focus 0: must be at"),
        ({"clip": -1.0}, "--clip -1.0: must be a positive number"),
        ({"max_batches": {"multi-modal": -1}}, "--max_batches_multi_modal -1: must be at least 0"),
        ({"validation_patches": -5}, "--validation_patches -5: must be at least 0"),
        ({"validate_every": -1}, "--validate_every -1: must be at least 0"),
        ({"c": {**TASK_C, "multi-modal": 0.0}}, "--c_multi_modal 0.0: must be a positive number"),
        ({"task_order": []}, "--tasks: name at least one task"),
        ({"task_order": ["fusion"]}, "--tasks fusion: unknown task"),
        ({"learning_rate": float("nan")}, "--learning_rate nan: must be a positive number"),
        ({"ewc_lambda": -1.0}, r"--ewc_lambda -1.0: must be a number at least 0 \(0: EWC off\)"),
        ({"checkpoint_minutes": 0.0}, "--checkpoint_minutes 0.0: must be positive"),
        ({"join_timeout": -1.0}, "--join_timeout -1.0: must be positive"),
        ({"precision": "fp8"}, "--precision: unknown precision 'fp8'"),
    ],
)
def test_settings_that_cannot_train_are_refused_before_any_work(tiny_config, changes, message):
    """The Python API refuses them as the command line does, before the run folder exists; a
    task that is not trained needs no valid settings."""
    dataclasses.replace(tiny_config, task_order=TASKS[:1], epochs={"multi-modal": 1}).validate()
    with pytest.raises(U2FusionError, match=message):
        Trainer(dataclasses.replace(tiny_config, **changes), log=lambda _: None)
    assert not os.path.exists(tiny_config.run_dir)


def test_the_command_refuses_a_setting_that_cannot_train_in_one_line(task_files, tmp_path):
    command = [sys.executable, "-m", "u2fusion_tf.train", "--run_dir", str(tmp_path / "run")]
    command += ["--data_dir", os.path.dirname(task_files["multi-modal"]), "--clip=-1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: --clip -1.0: must be a positive number"
    assert "Traceback" not in result.stderr and not os.path.exists(tmp_path / "run")
    command[-1] = "--output=final.h5"
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --output final.h5: must end in .weights.h5"
    )


def train_process(task_files, run_dir, **popen):
    """``python -m u2fusion_tf.train`` (deterministic by default) on the tiny data: the tasks
    multi-modal (1 epoch) and multi-exposure (3 epochs of 3 steps, checkpointed after every
    step), logging every step."""
    command = [sys.executable, "-m", "u2fusion_tf.train", "--run_dir", str(run_dir)]
    command += ["--data_dir", os.path.dirname(task_files["multi-modal"])]
    command += ["--tasks", "multi-modal,multi-exposure", "--vgg_weights", "none"]
    command += ["--epochs_multi_modal", "1", "--epochs_multi_exposure", "3", "--batch_size", "6"]
    command += ["--c_multi_modal", "0.1", "--c_multi_exposure", "0.1", "--log_every", "1"]
    command += ["--fisher_batches", "2", "--fisher_batch_size", "3", "--validation_patches", "4"]
    command += ["--validate_every", "3", "--checkpoint_minutes", "1e-9"]
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True, **popen)


def final_weights(run_dir):
    model = load_model(os.path.join(run_dir, "task2-multi-exposure.weights.h5"))
    return [variable.numpy() for variable in model.trainable_variables]


def test_deterministic_runs_and_a_killed_run_resumed_end_with_identical_weights(
    task_files, tmp_path
):
    """Two runs give identical weights, and so does a run killed (SIGKILL) in the middle of its
    second task and run again."""
    for name in ("first", "second"):
        process = train_process(task_files, tmp_path / name)
        assert process.wait(timeout=300) == 0, process.stderr.read()
    killed = train_process(task_files, tmp_path / "killed")
    for line in killed.stderr:  # the second epoch of task 2 has begun: kill it there
        if "task multi-exposure epoch 2/3 batch 1/3" in line:
            killed.kill()
            break
    assert killed.wait(timeout=300) == -signal.SIGKILL
    assert not os.path.exists(tmp_path / "killed" / "task2-multi-exposure.weights.h5")
    resumed = train_process(task_files, tmp_path / "killed")
    _, log = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, log
    assert re.search(r"resumed from .*: task 2, epoch [23], step [0-3]\n", log), log
    assert "WARNING" not in log
    first = final_weights(tmp_path / "first")
    assert sum(np.abs(variable).sum() for variable in first) > 0
    for other in ("second", "killed"):
        for ours, theirs in zip(first, final_weights(tmp_path / other), strict=True):
            np.testing.assert_array_equal(ours, theirs)


def test_an_op_without_a_deterministic_kernel_is_a_one_line_hint():
    message = "Deterministic GPU implementation of unsorted segment reduction op not available."
    error = tf.errors.UnimplementedError(None, None, message + "\n\t [[{{node x}}]]")
    hint = without_determinism_hint(error, deterministic=True)
    assert isinstance(hint, U2FusionError)
    assert str(hint) == message + "; train with --nodeterministic on this device"
    assert without_determinism_hint(error, deterministic=False) is error
    other = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
    assert without_determinism_hint(other, deterministic=True) is other


def test_the_fisher_batches_of_the_learnt_tasks_are_drawn_apart(task_files):
    """One random stream for all the tasks learnt so far, as the authors draw them: the same
    task twice gets other batches the second time, so another Fisher."""
    data = TaskData(TASKS[0], PatchFiles(task_files[TASKS[0]], TASKS[0]), 4, 0)
    model = U2FusionNet()

    def similarity(batch, c):
        return c * tf.reduce_mean(tf.square(model(batch[0]) - batch[0][..., :1]))

    first, second = fisher_pass(
        model, similarity, [(data, 0.1), (data, 0.1)], np.random.default_rng(3), 2, 3
    )
    assert any(not np.array_equal(a.numpy(), b.numpy()) for a, b in zip(first, second, strict=True))


def test_lambda_is_the_papers_by_default_and_0_the_releases(tiny_config):
    """lambda = 8e4 (the paper) by default; 0, the authors' release (LAM = 0), is accepted and
    leaves the loss as L_sim alone."""
    assert TrainConfig(data_files={}, run_dir="r").ewc_lambda == 8e4 == LAMBDA
    assert LAMBDA_SWEEP["baseline"] == LAMBDA and LAMBDA_SWEEP["no-ewc"] == 0
    released = dataclasses.replace(tiny_config, ewc_lambda=0.0)
    released.validate()
    trainer = Trainer(released, log=lambda _: None)
    data = trainer.task_data(TASKS[0])
    losses = trainer.losses(
        tf.constant(data.val_sources), tf.constant(data.val_information), 0.1, training=False
    )[0]
    assert float(losses["lambda_ewc"]) == 0 and float(losses["total"]) == float(losses["sim"])


def test_the_fisher_pass_after_the_last_task_is_skipped_by_default(tiny_config, tmp_path):
    config = dataclasses.replace(
        tiny_config,
        run_dir=str(tmp_path / "run"),
        task_order=TASKS[:2],
        max_batches=dict.fromkeys(TASKS, 1),
        validate_every=0,
    )
    Trainer(config, log=lambda _: None).run()
    assert os.path.isfile(os.path.join(config.run_dir, "fisher-task1.npz"))
    assert not os.path.exists(os.path.join(config.run_dir, "fisher-task2.npz"))
