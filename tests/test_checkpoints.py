"""Resuming from damaged checkpoints: the newest one that reads back is used, none is deleted."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from u2fusion_tf.checkpoints import (
    UNREADABLE,
    RunState,
    checkpoint_prefixes,
    restore_newest_readable,
)
from u2fusion_tf.errors import U2FusionError


def state(step: float) -> tf.train.Checkpoint:
    """A small training state: weights and a step counter, all equal to `step`."""
    return tf.train.Checkpoint(
        weights=tf.Variable(np.full(4096, step, np.float32)), step=tf.Variable(int(step))
    )


@pytest.fixture
def folder(tmp_path):
    """Two checkpoints, as training keeps them: ckpt-1 (older) and ckpt-2 (the latest)."""
    folder = str(tmp_path / "ckpt")
    checkpoint = state(0)
    manager = tf.train.CheckpointManager(checkpoint, folder, max_to_keep=2)
    for step in (1, 2):
        checkpoint.weights.assign(np.full(4096, step, np.float32))
        checkpoint.step.assign(step)
        manager.save(checkpoint_number=step)
    return folder


def damage(folder: str, case: str) -> None:
    data, index = (
        os.path.join(folder, f"ckpt-2.{end}") for end in ("data-00000-of-00001", "index")
    )
    if case == "flipped bytes":
        content = bytearray(Path(data).read_bytes())
        for position in range(100, 8000, 97):
            content[position] ^= 0xFF
        Path(data).write_bytes(bytes(content))
    elif case == "truncated":
        os.truncate(data, os.path.getsize(data) // 2)
    elif case == "missing data":
        os.remove(data)
    elif case == "garbage index":
        Path(index).write_bytes(os.urandom(300))
    elif case == "empty index":
        Path(index).write_bytes(b"")
    else:
        raise AssertionError(case)


@pytest.mark.parametrize(
    "case", ["flipped bytes", "truncated", "missing data", "garbage index", "empty index"]
)
def test_a_damaged_latest_checkpoint_falls_back_to_the_earlier_one(folder, case):
    damage(folder, case)
    lines, restored = [], state(-1)
    assert restore_newest_readable(restored, folder, lines.append).endswith("ckpt-1")
    assert int(restored.step) == 1 and (restored.weights.numpy() == 1).all()
    assert len(lines) == 1 and "skipped unreadable checkpoint(s)" in lines[0]
    assert "ckpt-2" in lines[0]
    moved = sorted(os.listdir(os.path.join(folder, UNREADABLE)))
    assert moved and all(name.startswith("ckpt-2.") for name in moved), "kept, not deleted"
    assert tf.train.latest_checkpoint(folder).endswith("ckpt-1")
    manager = tf.train.CheckpointManager(restored, folder, max_to_keep=2)
    manager.save(checkpoint_number=2)  # training carries on and saves again
    assert sorted(os.listdir(os.path.join(folder, UNREADABLE))) == moved
    assert restore_newest_readable(state(-1), folder, lines.append).endswith("ckpt-2")


@pytest.mark.parametrize(
    "content", ["garbage \x00\x01 not a state", 'model_checkpoint_path: "ckpt-9"']
)
def test_a_damaged_state_file_does_not_hide_the_checkpoints(folder, content):
    with open(os.path.join(folder, "checkpoint"), "w") as stream:
        stream.write(content)
    lines, restored = [], state(-1)
    assert restore_newest_readable(restored, folder, lines.append).endswith("ckpt-2")
    assert int(restored.step) == 2 and lines == []
    assert sorted(os.listdir(folder)) == [
        "checkpoint",
        "ckpt-1.data-00000-of-00001",
        "ckpt-1.index",
        "ckpt-2.data-00000-of-00001",
        "ckpt-2.index",
    ]
    assert tf.train.latest_checkpoint(folder).endswith("ckpt-2")


def test_no_readable_checkpoint_is_an_error_that_deletes_nothing(folder):
    for prefix in ("ckpt-1", "ckpt-2"):
        Path(folder, f"{prefix}.index").write_bytes(b"")
    before = sorted(os.listdir(folder))
    with pytest.raises(U2FusionError, match="no checkpoint can be read"):
        restore_newest_readable(state(-1), folder, lambda _: None)
    assert sorted(os.listdir(folder)) == before


def test_an_empty_folder_starts_a_new_run(tmp_path):
    assert restore_newest_readable(state(-1), str(tmp_path / "ckpt"), lambda _: None) is None


def test_every_resume_keeps_exactly_the_promised_number_of_checkpoints(folder):
    """Three times: resume (a new manager over the folder, as `Trainer` makes one) and save two
    more; the folder holds `max_to_keep` checkpoints, the newest, every time."""
    step = 2
    for _ in range(3):
        restored = state(-1)
        restore_newest_readable(restored, folder, lambda _: None)
        manager = tf.train.CheckpointManager(restored, folder, max_to_keep=2)
        for _ in range(2):
            step += 1
            manager.save(checkpoint_number=step)
        indexes = sorted(name for name in os.listdir(folder) if name.endswith(".index"))
        assert indexes == [f"ckpt-{step - 1}.index", f"ckpt-{step}.index"]


def test_a_run_state_saves_and_resumes_where_the_run_stood(tmp_path):
    folder = str(tmp_path / "ckpt")
    weights = tf.Variable(np.zeros(4, np.float32))
    run = RunState(folder, weights=weights)
    assert run.resume(lambda _: None) is None and run.latest is None
    for step in range(1, 5):
        run.global_step.assign(step)
        run.epoch.assign(step // 2)
        weights.assign(np.full(4, step, np.float32))
        run.save()
    assert run.latest.endswith("ckpt-4") and len(checkpoint_prefixes(folder)) == 2
    weights_later = tf.Variable(np.zeros(4, np.float32))
    later = RunState(folder, weights=weights_later)
    assert later.resume(lambda _: None).endswith("ckpt-4")
    assert (int(later.global_step), int(later.epoch), int(later.task_index)) == (4, 2, 0)
    assert (weights_later.numpy() == 4).all()
