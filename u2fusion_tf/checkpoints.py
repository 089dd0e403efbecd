"""Resuming from the newest training checkpoint that reads back whole.

A checkpoint can be damaged (a disk error, a copy cut short, an edited file) and so can the
``checkpoint`` state file that names the latest one. Resuming therefore does not trust the state
file: it tries the checkpoints found in the folder, newest first, restores the first that reads
back completely, and moves the ones it could not read into ``unreadable/`` beside them (kept
for inspection, never deleted, and out of the way of the checkpoints that training writes next).
The state file is then rewritten to name the readable checkpoints only.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from collections.abc import Callable

import tensorflow as tf

from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.files import write_atomically

UNREADABLE = "unreadable"
"""Subfolder that receives the checkpoints that could not be restored."""


def checkpoint_prefixes(folder: str) -> list[str]:
    """The checkpoints in `folder` (``<name>-<number>.index`` files), newest (highest number)
    first."""
    numbered = []
    for index in glob.glob(os.path.join(glob.escape(folder), "*-*.index")):
        match = re.fullmatch(r"(.*-(\d+))\.index", index)
        if match:
            numbered.append((int(match[2]), match[1]))
    return [prefix for _, prefix in sorted(numbered, reverse=True)]


def restore_newest_readable(
    checkpoint: tf.train.Checkpoint, folder: str, log: Callable[[str], None]
) -> str | None:
    """Restores the newest checkpoint of `folder` that reads back whole into `checkpoint` and
    returns its prefix; None when there is none. Says which was used and which were skipped."""
    prefixes = checkpoint_prefixes(folder)
    skipped = []
    for position, prefix in enumerate(prefixes):
        try:
            checkpoint.restore(prefix).assert_existing_objects_matched()
        except Exception as error:  # TensorFlow raises many types for a damaged file
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
            skipped.append(f"{prefix} ({reason})")
            continue
        if skipped:
            _move_aside(folder, prefixes[:position])
            log(
                f"skipped unreadable checkpoint(s), moved to {os.path.join(folder, UNREADABLE)}: "
                + "; ".join(skipped)
            )
        write_checkpoint_state(folder, prefixes[position:])
        return prefix
    if skipped:
        raise U2FusionError(
            f"{folder}: no checkpoint can be read ({'; '.join(skipped)}); move the folder away "
            "to start the run over"
        )
    return None


def write_checkpoint_state(folder: str, prefixes: list[str]) -> None:
    """Rewrites the ``checkpoint`` state file (TensorFlow's CheckpointState, as text) to name
    `prefixes`, newest first, with the newest as the latest. Each is given its file's time, after
    the (zero) time of the last preserved checkpoint, so that `tf.train.CheckpointManager` counts
    them towards ``max_to_keep`` and deletes the oldest as it saves new ones (without the times
    it would keep them forever, and every resume would add to them)."""
    oldest_first = list(reversed(prefixes))
    names = [os.path.basename(prefix) for prefix in oldest_first]
    lines = [f'model_checkpoint_path: "{names[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{name}"' for name in names]
    lines += [
        f"all_model_checkpoint_timestamps: {os.path.getmtime(prefix + '.index')!r}"
        for prefix in oldest_first
    ]
    lines.append("last_preserved_timestamp: 0.0")
    write_atomically(os.path.join(folder, "checkpoint"), ("\n".join(lines) + "\n").encode())


def _move_aside(folder: str, prefixes: list[str]) -> None:
    target = os.path.join(folder, UNREADABLE)
    os.makedirs(target, exist_ok=True)
    for prefix in prefixes:
        for path in glob.glob(glob.escape(prefix) + ".*"):
            shutil.move(path, os.path.join(target, os.path.basename(path)))


class RunState:
    """Where a run stands (task, epoch, step in the epoch, global step), and the checkpoints that
    keep it with the training state given (`trackables`: the model, optimizer, EWC state), so
    that a rerun resumes: `resume` restores the newest readable one, `save` adds one and keeps
    the newest `max_to_keep`."""

    def __init__(self, folder: str, max_to_keep: int = 2, **trackables: tf.Module):
        # kept by each process alone (outside any strategy: plain numbers to read)
        self.task_index = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(
            **trackables,
            task_index=self.task_index,
            epoch=self.epoch,
            step_in_epoch=self.step_in_epoch,
            global_step=self.global_step,
        )
        self.folder, self.max_to_keep = folder, max_to_keep
        self.manager = self._manager()

    def _manager(self) -> tf.train.CheckpointManager:
        return tf.train.CheckpointManager(self.checkpoint, self.folder, self.max_to_keep)

    @property
    def latest(self) -> str | None:
        """The newest checkpoint, or None."""
        return self.manager.latest_checkpoint

    def resume(self, log: Callable[[str], None]) -> str | None:
        """Restores the newest readable checkpoint (`restore_newest_readable`); its prefix, or
        None for a new run."""
        resumed = restore_newest_readable(self.checkpoint, self.folder, log)
        if resumed:
            self.manager = self._manager()  # the state file now names readable ones only
        return resumed

    def save(self) -> None:
        """Adds a checkpoint numbered by the global step; a one-line error when it cannot be
        written (a full disk), naming the last good one."""
        try:
            self.manager.save(checkpoint_number=self.global_step)
        except tf.errors.OpError as error:  # a full disk is ResourceExhaustedError
            raise U2FusionError(
                f"{self.folder}: the checkpoint cannot be written ({error.message}); "
                f"the last good one is {self.latest}"
            ) from error
