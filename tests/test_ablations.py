"""The ablation runner: every variant trained with one schedule, no-ewc from the baseline's
task-1 state, provenance recorded, and a rerun that only resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from u2fusion_tf.catalogue import TASKS
from u2fusion_tf.variants import VARIANTS
from u2fusion_tf.weights import load_model


def tiny_schedule() -> list[str]:
    flags = ["--vgg_weights", "none", "--batch_size", "6", "--fisher_batches", "2"]
    flags += ["--fisher_batch_size", "3", "--validation_patches", "4", "--validate_every", "3"]
    for task in TASKS:
        key = task.replace("-", "_")
        flags += [f"--epochs_{key}", "1", f"--c_{key}", "0.1", f"--max_batches_{key}", "2"]
    return flags


def run_ablations(
    task_files, runs: Path, variants: str, seeds: str = "0"
) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "u2fusion_tf.ablations", "--data_dir"]
    command += [os.path.dirname(task_files[TASKS[0]]), "--runs_dir", str(runs)]
    command += ["--variants", variants, "--seeds", seeds, "--", *tiny_schedule()]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def weights(path: Path) -> list[np.ndarray]:
    return [v.numpy() for v in load_model(str(path)).trainable_variables]


def test_no_ewc_starts_from_the_baseline_after_task_one_and_reruns_resume(task_files, tmp_path):
    result = run_ablations(task_files, tmp_path / "runs", "baseline,no-ewc")
    runs = tmp_path / "runs" / "seed0"
    assert result.returncode == 0, result.stderr[-2000:]
    first = "task1-multi-modal.weights.h5"
    for a, b in zip(
        weights(runs / "baseline" / first), weights(runs / "no-ewc" / first), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert (runs / "baseline-task1" / first).is_file()
    assert not list((runs / "baseline-task1").glob("task2-*")), "the snapshot is after task 1"
    last = "task3-multi-focus.weights.h5"
    changed = [
        not np.array_equal(a, b)
        for a, b in zip(
            weights(runs / "baseline" / last), weights(runs / "no-ewc" / last), strict=True
        )
    ]
    assert any(changed)
    settings = json.loads((runs / "no-ewc" / "config.json").read_text())
    assert settings["ewc_lambda"] == 0 and settings["max_batches"]["multi-focus"] == 2
    provenance = json.loads((runs / "no-ewc" / "provenance.json").read_text())
    assert provenance["command"][-2:] == ["--ewc_lambda", "0"] and provenance["commit"]

    stamp = (runs / "baseline" / last).stat().st_mtime
    again = run_ablations(task_files, tmp_path / "runs", "baseline")
    assert again.returncode == 0 and (runs / "baseline" / last).stat().st_mtime == stamp


def test_unknown_variant_is_a_one_line_error(task_files, tmp_path):
    result = run_ablations(task_files, tmp_path / "runs", "baseline,no-adam")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: unknown variant(s) no-adam; known: {', '.join(VARIANTS)}"
    )


def test_each_seed_has_its_own_runs_and_lambda_variants_start_from_its_baseline(
    task_files, tmp_path
):
    result = run_ablations(task_files, tmp_path / "runs", "baseline,lambda-8e6", seeds="0,1")
    assert result.returncode == 0, result.stderr[-2000:]
    first, last = "task1-multi-modal.weights.h5", "task3-multi-focus.weights.h5"
    seed0, seed1 = tmp_path / "runs" / "seed0", tmp_path / "runs" / "seed1"
    for seed in (seed0, seed1):
        for a, b in zip(
            weights(seed / "baseline" / first), weights(seed / "lambda-8e6" / first), strict=True
        ):
            np.testing.assert_array_equal(a, b)
        assert json.loads((seed / "lambda-8e6" / "config.json").read_text())["ewc_lambda"] == 8e6
    assert json.loads((seed1 / "baseline" / "config.json").read_text())["seed"] == 1
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(
            weights(seed0 / "baseline" / last), weights(seed1 / "baseline" / last), strict=True
        )
    ), "another seed trains another model"


def test_a_run_records_its_provenance_before_its_first_task_trains(tmp_path, monkeypatch):
    """A run that is still in its first task must already name its commit and command, so that
    a report written meanwhile can say what is training."""
    from u2fusion_tf import ablations

    seen = []

    def training(command: list) -> None:
        provenance = json.loads((tmp_path / "seed0" / "baseline" / "provenance.json").read_text())
        seen.append((provenance["command"], command[-2:]))
        (tmp_path / "seed0" / "baseline" / "task1-multi-modal.weights.h5").write_bytes(b"")

    monkeypatch.setattr(ablations, "run", training)
    ablations.train_variant("data", str(tmp_path), 0, "baseline", ["--vgg_weights", "none"])
    first_task, whole_run = seen
    assert first_task[1] == ["--stop_after_tasks", "1"]
    assert first_task[0] == whole_run[0] and first_task[0][-2:] == ["--seed", "0"]
