"""The ablation report reads back what the runs recorded: tiny run folders trained by the real
`Trainer` (no-ewc starting from a copy of the baseline after task 1, as the runner does), scored
on small crops of the real test pairs."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from u2fusion_tf import ablation_report
from u2fusion_tf.ablations import copy_folder
from u2fusion_tf.datasets import evaluation_sets
from u2fusion_tf.features import TASKS
from u2fusion_tf.fuse import fuse
from u2fusion_tf.images import read_image, write_image
from u2fusion_tf.metrics import compute_metrics
from u2fusion_tf.train import TrainConfig, Trainer
from u2fusion_tf.weights import load_model

CROP = 64


def tiny_config(task_files, run_dir: Path, **changes) -> TrainConfig:
    """Three tasks of 3 steps each (22 training patches, batches of 6), validated every 2 steps."""
    config = TrainConfig(
        data_files=task_files,
        run_dir=str(run_dir),
        epochs=dict.fromkeys(TASKS, 1),
        c=dict.fromkeys(TASKS, 0.1),
        batch_size=6,
        fisher_batches=2,
        fisher_batch_size=3,
        validation_patches=4,
        validate_every=2,
        vgg_weights="none",
        fisher_after_last_task=True,  # as the ablations runner asks, for Fig. 19
    )
    return dataclasses.replace(config, **changes)


def train(config: TrainConfig, variant: str) -> None:
    Trainer(config, log=lambda _: None).run()
    record = {"commit": f"commit-of-{variant}", "command": ["-m", "u2fusion_tf.train", variant]}
    (Path(config.run_dir) / "provenance.json").write_text(json.dumps(record))


@pytest.fixture(scope="module")
def runs_dir(task_files, tmp_path_factory) -> Path:
    """baseline, no-ewc (from the baseline's folder after task 1) and fixed-degrees."""
    runs = tmp_path_factory.mktemp("ablations")
    train(tiny_config(task_files, runs / "baseline", stop_after_tasks=1), "baseline")
    copy_folder(str(runs / "baseline"), str(runs / "baseline-task1"))
    copy_folder(str(runs / "baseline-task1"), str(runs / "no-ewc"))
    train(tiny_config(task_files, runs / "baseline"), "baseline")
    train(tiny_config(task_files, runs / "no-ewc", use_ewc=False), "no-ewc")
    train(tiny_config(task_files, runs / "fixed-degrees", fixed_degrees=True), "fixed-degrees")
    return runs


@pytest.fixture(scope="module")
def data_root(shared_data, tmp_path_factory) -> Path:
    """The first test pair of every set of the shared data, cropped to 64x64 at its centre, in
    the same folders (the other pairs of the splits are absent, so not scored)."""
    root = tmp_path_factory.mktemp("data")
    for evaluation_set in evaluation_sets(shared_data):
        _, *paths = evaluation_set.pairs()[0]
        for path in paths:
            image = read_image(path)
            top, left = (image.shape[0] - CROP) // 2, (image.shape[1] - CROP) // 2
            target = root / path.relative_to(shared_data).with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            write_image(target, image[top : top + CROP, left : left + CROP])
    return root


@pytest.fixture(scope="module")
def report(runs_dir, data_root, tmp_path_factory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("report")
    path = ablation_report.write_report(
        runs_dir, out / "ablations.md", out / "figures", data_root, out / "fused", log=print
    )
    return path.read_text(), out


def section(text: str, heading: str) -> str:
    """The Markdown from `heading` up to the next heading of the same or a higher level."""
    lines = text.splitlines()
    start = lines.index(heading)
    level = len(heading.split(" ")[0])
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if lines[i].startswith("#") and len(lines[i].split(" ")[0]) <= level
        ),
        len(lines),
    )
    return "\n".join(lines[start:end])


def table_rows(text: str) -> list[list[str]]:
    """The cells of every body row of the Markdown tables in `text` (headers left out)."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    rows = []
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if line.startswith("| ---") or following.startswith("| ---"):
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def held_out_losses(config: TrainConfig, weights: list[Path], task: str, tmp: Path) -> list:
    """L_sim of each of `weights` on the held-out patches of `task`, computed afresh (by a
    trainer writing into `tmp`, not into the run folder)."""
    trainer = Trainer(dataclasses.replace(config, run_dir=str(tmp)), log=lambda _: None)
    data = trainer.task_data(task)
    losses = []
    for path in weights:
        trainer.model.set_weights(load_model(path).get_weights())
        sources, information = tf.constant(data.val_sources), tf.constant(data.val_information)
        losses.append(float(trainer.losses(sources, information, 0.1, training=False)[0]["sim"]))
    return losses


def test_fig18_table_holds_each_tasks_held_out_loss_at_every_task_end(
    report, runs_dir, task_files, tmp_path
):
    text, out = report
    rows = {
        (row[0], row[1]): row[2:]
        for row in table_rows(section(text, "## Fig. 18: EWC keeps the earlier tasks"))
        if row[1] in ("baseline", "no-ewc")
    }
    assert len(rows) == 2 * len(TASKS)
    for variant in ("baseline", "no-ewc"):
        config = tiny_config(task_files, runs_dir / variant)
        for j, task in enumerate(TASKS):
            *cells, change = rows[(task, variant)]
            assert cells[:j] == [ablation_report.MISSING] * j, "no loss before the task was learnt"
            weights = [
                runs_dir / variant / f"task{k + 1}-{TASKS[k]}.weights.h5"
                for k in range(j, len(TASKS))
            ]
            expected = held_out_losses(config, weights, task, tmp_path / variant)
            np.testing.assert_allclose([float(c) for c in cells[j:]], expected, atol=6e-5)
            if j + 1 < len(TASKS):
                rise = float(cells[-1]) / float(cells[j]) - 1
                assert float(change.rstrip("%")) == pytest.approx(100 * rise, abs=0.06)
    task1 = [rows[(TASKS[0], v)][0] for v in ("baseline", "no-ewc")]
    assert task1[0] == task1[1], "no-ewc starts from the baseline after task 1"
    assert "commit `commit-of-no-ewc`" in text and "commit `commit-of-baseline`" in text
    png = cv2.imread(str(out / "figures" / "fig18-similarity-loss.png"))
    assert png is not None and png.shape[1] > png.shape[0] > 100


def test_fig19_table_holds_the_quantiles_of_mu_after_every_task(report, runs_dir):
    text, out = report
    rows = table_rows(section(text, "## Fig. 19: the importance of the weights"))
    assert len(rows) == 2 * len(TASKS)
    for row in rows:
        variant, after = row[0], int(row[1].split(":")[0])
        with np.load(runs_dir / variant / f"fisher-task{after}.npz") as arrays:
            mu = np.concatenate([arrays[name].ravel() for name in arrays.files])
        assert int(row[2]) == mu.size
        printed = [float(cell) for cell in row[4:]]
        expected = [*np.quantile(mu, ablation_report.MU_QUANTILES), mu.max(), mu.mean()]
        np.testing.assert_allclose(printed, expected, rtol=5e-3)
    first = [row[2:] for row in rows if row[1].startswith("1:")]
    assert first[0] == first[1], "the same task-1 folder, the same mu"
    png = cv2.imread(str(out / "figures" / "fig19-importance.png"))
    assert png is not None and png.shape[1] > png.shape[0] > 100


def test_fig22_and_table5_score_the_final_weights_on_every_test_set(report, runs_dir, data_root):
    text, out = report
    fig22 = section(text, "## Fig. 22: adaptive information preservation degrees")
    baseline = load_model(runs_dir / "baseline" / "task3-multi-focus.weights.h5")
    sets = evaluation_sets(data_root)
    assert len(sets) == 10
    for evaluation_set in sets:
        _, path_a, path_b = evaluation_set.pairs()[0]
        a, b = read_image(path_a), read_image(path_b)
        write_image(out / "check.png", np.clip(fuse([a, b], baseline), 0, 1))
        fused = read_image(out / "check.png")
        rows = {row[0]: row[1:] for row in table_rows(section(fig22, f"### {evaluation_set.name}"))}
        expected = compute_metrics(a, b, fused, list(ablation_report.FIG22_METRICS), "standard")
        for metric, value in expected.items():
            assert float(rows[metric][0].split(" ± ")[0]) == pytest.approx(value, rel=1e-3)
        if evaluation_set.name == "u2fusion_test-vis-ir-TNO":
            paper = compute_metrics(a, b, fused, ["CC", "AG"], "paper")
    changes = {
        row[0]: row[1:]
        for row in table_rows(section(fig22, "### fixed-degrees relative to baseline"))
    }
    assert set(changes) == {s.name for s in sets}
    figure = cv2.imread(str(out / "figures" / "fig22-adaptive-degrees.jpg"))
    assert figure.shape[0] > 10 * 220, "a row for every set"

    table5 = section(text, "## Table 5: the training order")
    rows = table_rows(table5)
    assert rows[0][:3] == ["modal→exposure→focus", "paper, Table 5", "0.5370 / 0.0467"]
    assert rows[1][:2] == ["modal→exposure→focus", "`baseline`"]
    cc, mg = (float(x) for x in rows[1][2].split(" / "))
    assert (cc, mg) == pytest.approx((paper["CC"], paper["AG"]), abs=6e-5)
    assert "not trained: `exposure-first`, `focus-first`" in table5


def test_without_matplotlib_the_tables_are_written_and_the_figures_named(
    runs_dir, data_root, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    lines = []
    path = ablation_report.write_report(
        runs_dir,
        tmp_path / "ablations.md",
        tmp_path / "figures",
        data_root,
        tmp_path / "fused",
        max_pairs=1,
        log=lines.append,
    )
    text = path.read_text()
    assert "(Fig. 18 was not drawn: matplotlib is not installed" in text
    assert "(Fig. 19 was not drawn: matplotlib is not installed" in text
    assert len(table_rows(section(text, "## Fig. 19: the importance of the weights"))) == 6
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "fig22-adaptive-degrees.jpg"
    ]
    assert any("figures skipped" in line for line in lines)


def test_typed_table_5_is_the_papers():
    text_path = Path(__file__).resolve().parents[2] / "shared" / "paper" / "U2Fusion_TPAMI.txt"
    if not text_path.is_file():
        pytest.skip(f"{text_path} not found: the paper's text sits in ../shared")
    lines = text_path.read_text(encoding="utf-8").splitlines()
    start = lines.index("TABLE 5")
    body = lines[start + 5 : start + 8]
    for line, (order, typed) in zip(body, ablation_report.PAPER_TABLE_5.items(), strict=True):
        label, *cells = line.split("\t")
        assert label.replace(" ", "") == ablation_report.order_label(order)
        printed = [tuple(float(x) for x in cell.split("/")) for cell in cells]
        assert printed == list(typed.values())
    header = [re.sub(r"<[^>]+>", "", cell) for cell in lines[start + 4].split("\t")[1:]]
    assert header == list(ablation_report.TABLE5_SETS)


def no_folder(runs: Path) -> None:
    pass


def empty_run_folder(runs: Path) -> None:
    (runs / "baseline").mkdir(parents=True)


def broken_config(runs: Path) -> None:
    empty_run_folder(runs)
    (runs / "baseline" / "config.json").write_text("{")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (no_folder, "is not a folder of ablation runs"),
        (empty_run_folder, None),
        (broken_config, "baseline/config.json: cannot be read as JSON"),
    ],
)
def test_cli_bad_runs_folder(tmp_path, make, message):
    runs = tmp_path / "runs"
    make(runs)
    command = [
        sys.executable,
        "-m",
        "u2fusion_tf.ablation_report",
        "--runs_dir",
        str(runs),
        "--report",
        str(tmp_path / "out" / "ablations.md"),
        "--figures",
        str(tmp_path / "out"),
        "--data_root",
        str(tmp_path / "no-data"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if message is None:  # no finished run: nothing to score, the report says what is missing
        assert result.returncode == 0, result.stderr
        text = (tmp_path / "out" / "ablations.md").read_text()
        assert "| `baseline` | not trained |" in text and "Left out (not trained: `no-ewc`" in text
        return
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists(), "no partial output"
