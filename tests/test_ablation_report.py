"""The ablation report: a run's summary holds what the run recorded (a tiny run trained by the
real `Trainer`, scored on small crops of the real test pairs), and the claims, the lambda sweep
and the report follow from summaries by the rule of `u2fusion_tf.verdicts`."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from u2fusion_tf import ablation_data, ablation_report
from u2fusion_tf.catalogue import TASKS, evaluation_sets
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.files import sha256_of
from u2fusion_tf.fuse import fuse
from u2fusion_tf.images import read_image, write_image
from u2fusion_tf.metrics import compute_metrics
from u2fusion_tf.runs import read_run, write_provenance
from u2fusion_tf.training import TrainConfig, Trainer
from u2fusion_tf.variants import LAMBDA_SWEEP
from u2fusion_tf.verdicts import DOES_NOT_HOLD, HOLDS, NOT_RESOLVED
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


@pytest.fixture(scope="module")
def baseline_run(task_files, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("runs") / "seed0" / "baseline"
    Trainer(tiny_config(task_files, folder), log=lambda _: None).run()
    write_provenance(folder, ["-m", "u2fusion_tf.train", "baseline"])
    return folder


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


def test_a_runs_summary_holds_its_losses_mu_and_scores(
    baseline_run, task_files, data_root, tmp_path
):
    run = read_run(baseline_run)
    summary = ablation_data.summarize_run(
        run, "baseline", 0, data_root, tmp_path / "fused", log=lambda _: None
    )
    path = ablation_data.write_summary(tmp_path / "summaries", summary)
    summary = ablation_data.read_summaries(tmp_path / "summaries")[(0, "baseline")]
    assert path.name == "seed0-baseline.json" and summary["tasks_done"] == 3
    assert summary["command"] == ["-m", "u2fusion_tf.train", "baseline"]
    config = tiny_config(task_files, baseline_run)
    for j, task in enumerate(TASKS):
        recorded = [ablation_data.loss_at_task_end(summary, task, k) for k in (1, 2, 3)]
        assert recorded[:j] == [None] * j, "no loss before the task was learnt"
        weights = [baseline_run / f"task{k + 1}-{TASKS[k]}.weights.h5" for k in range(j, 3)]
        expected = held_out_losses(config, weights, task, tmp_path / task)
        np.testing.assert_allclose(recorded[j:], expected, atol=6e-5)
    for k, stats in enumerate(summary["mu"], 1):
        with np.load(baseline_run / f"fisher-task{k}.npz") as arrays:
            mu = np.concatenate([arrays[name].ravel() for name in arrays.files])
        assert stats["weights"] == mu.size
        np.testing.assert_allclose(
            stats["quantiles"], np.quantile(mu, ablation_data.MU_QUANTILES), rtol=1e-6
        )
        assert sum(stats["log10_histogram"]) == np.count_nonzero(mu)
    model = load_model(baseline_run / "task3-multi-focus.weights.h5")
    for evaluation_set in evaluation_sets(data_root):
        _, path_a, path_b = evaluation_set.pairs()[0]
        a, b = read_image(path_a), read_image(path_b)
        write_image(tmp_path / "check.png", np.clip(fuse([a, b], model), 0, 1))
        fused = read_image(tmp_path / "check.png")
        scores = summary["scores"]["standard"][evaluation_set.name]
        expected = compute_metrics(a, b, fused, list(ablation_data.FIG22_METRICS), "standard")
        for metric, value in expected.items():
            assert scores[metric] == [pytest.approx(value, rel=1e-6)], (evaluation_set.name, metric)
    assert set(summary["scores"]["paper"]) == set(ablation_data.TABLE5_SETS.values())
    written = json.loads(path.read_text())
    assert ablation_data.up_to_date(written, run, "baseline", 0)
    assert not ablation_data.up_to_date(written, run, "baseline", 1), "other pairs: scored again"
    fewer = {**written, "mu": written["mu"][:2]}
    assert not ablation_data.up_to_date(fewer, run, "baseline", 0), "a Fisher file came since"
    assert not ablation_data.up_to_date(None, run, "baseline", 0), "no summary yet"


def test_a_summary_redone_for_a_later_fisher_file_keeps_the_scores_of_the_same_model(
    baseline_run, tmp_path
):
    run = read_run(baseline_run)
    digest = sha256_of(baseline_run / "task3-multi-focus.weights.h5")
    scores = {"standard": {"mfifb": {"stems": ["x"], "EI": [1.0]}}, "paper": {}}
    previous = {"scores": scores, "scored_weights": digest, "max_pairs": 0}
    empty_root = tmp_path / "no-test-sets"  # scoring afresh stops here: no test set

    def summarize(previous: dict) -> dict:
        fused = tmp_path / "fused"
        return ablation_data.summarize_run(
            run, "baseline", 0, empty_root, fused, log=lambda _: None, previous=previous
        )

    kept = summarize(previous)
    assert kept["scores"] == scores and kept["scored_weights"] == digest
    assert len(kept["mu"]) == 3, "the rest of the summary is read afresh"
    for changed in ({"scored_weights": "0" * 64}, {"max_pairs": 2}, {"scores": {}}):
        with pytest.raises(U2FusionError, match="no-test-sets/roadscene: not found"):
            summarize({**previous, **changed})


def test_a_summary_of_a_finished_run_is_kept_when_its_folder_is_trained_again_in_part(
    task_files, tmp_path
):
    """A partner restarted from the baseline's first task retrains that task in a new folder:
    the complete summary of the earlier run must not be replaced by one of a single task."""
    folder = tmp_path / "runs" / "seed0" / "baseline"
    Trainer(tiny_config(task_files, folder, stop_after_tasks=1), log=lambda _: None).run()
    write_provenance(folder, ["-m", "u2fusion_tf.train", "baseline"])
    complete = tmp_path / "summaries" / "seed0-baseline.json"
    complete.parent.mkdir()
    complete.write_text(json.dumps(fake_summary("baseline", 0, {TASKS[0]: [1.0, 1.0, 1.0]})))
    before, messages = complete.read_bytes(), []
    written = ablation_report.update_summaries(
        tmp_path / "runs",
        complete.parent,
        tmp_path / "no-data",
        tmp_path / "out",
        0,
        messages.append,
    )
    assert written == [] and complete.read_bytes() == before
    assert messages == [f"kept {complete}: it records 3 tasks, the run folder has 1"]


def test_a_run_that_has_not_finished_a_task_is_not_summarised(tmp_path):
    """Its validations so far belong to no finished task, and would mix into the report's
    means beside finished runs."""
    folder = tmp_path / "runs" / "seed1" / "baseline"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"task_order": list(TASKS)}))
    summaries = tmp_path / "summaries"
    written = ablation_report.update_summaries(
        tmp_path / "runs", summaries, tmp_path / "no-data", tmp_path / "out", 0, lambda _: None
    )
    assert written == [] and not summaries.exists()


def fake_summary(variant: str, seed: int, losses: dict, mu_medians=(1e-6, 1e-6, 1e-6), ag=None):
    """A summary with three tasks ending at steps 10, 20, 30; `losses` gives each task's
    held-out L_sim at the task ends it was validated at."""
    order = list(TASKS)
    validation = {}
    for task, values in losses.items():
        ends = [10, 20, 30][3 - len(values) :]
        validation[task] = {"steps": ends, "values": values}
    mu = []
    for median in mu_medians:
        quantiles = [median / 10, median / 2, median, 2 * median, 4 * median, 10 * median]
        mu.append(
            {
                "weights": 10,
                "zero_share": 0.0,
                "quantiles": quantiles,
                "max": 1.0,
                "mean": median,
                "log10_histogram": [0] * (len(ablation_data.MU_LOG10_EDGES) - 1),
            }
        )
    scores = {}
    if ag is not None:
        lytro = ablation_data.LYTRO
        scores = {"paper": {lytro: {"stems": ["a", "b"], "CC": [0.9, 0.9], "AG": [ag, ag]}}}
    return {
        "format": ablation_data.SUMMARY_FORMAT,
        "variant": variant,
        "seed": seed,
        "commit": f"commit-{seed}",
        "command": ["-m", "u2fusion_tf.train", variant],
        "config": {},
        "task_order": order,
        "tasks_done": 3,
        "task_end_steps": [10, 20, 30],
        "validation": validation,
        "mu": mu,
        "scores": scores,
        "max_pairs": 0,
    }


def fake_summaries() -> dict:
    """Three seeds: without EWC task 1 rises by 50, 60, 40% during task 2; with it by 10, 12,
    8%; mu's median grows 10x without EWC."""
    modal, exposure, focus = TASKS
    found = {}
    for seed, (off, on) in enumerate([(1.5, 1.1), (1.6, 1.12), (1.4, 1.08)]):
        found[(seed, "no-ewc")] = fake_summary(
            "no-ewc",
            seed,
            {modal: [1.0, off, off], exposure: [2.0, 2.0 + seed / 10], focus: [0.3]},
            mu_medians=(1e-6, 3e-6, 1e-5),
        )
        found[(seed, "baseline")] = fake_summary(
            "baseline",
            seed,
            {modal: [1.0, on, 1.0], exposure: [2.0, 2.0], focus: [0.4]},
            mu_medians=(1e-6, 3e-6, 1.2e-5),
        )
    return found


def claim(found, text: str) -> ablation_data.Claim:
    (match,) = [c for c in found if c.text.startswith(text)]
    return match


def test_claims_are_judged_by_the_seed_rule():
    found = ablation_data.claims(fake_summaries())
    during_2 = claim(found, "EWC keeps task 1 (multi-modal) while task 2")
    assert during_2.effect.values == pytest.approx((40.0, 48.0, 32.0))
    assert during_2.effect.verdict == HOLDS  # mean 40, sd 8: 40 > 16, all positive
    kept = claim(found, "With EWC, task 1's loss stays")
    assert kept.null and kept.effect.values == pytest.approx((0.0, 0.0, 0.0))
    assert kept.effect.verdict == NOT_RESOLVED
    little = claim(found, "Without EWC, the distributions of mu")
    assert little.effect.values == pytest.approx((1.0, 1.0, 1.0))
    assert little.effect.verdict == DOES_NOT_HOLD, "10x in every seed is a difference"
    rises = claim(found, "Without EWC, task 2's loss increases")
    assert rises.effect.values == pytest.approx((0.0, 5.0, 10.0))
    assert rises.effect.verdict == NOT_RESOLVED
    assert claim(found, "MG drops when multi-focus").effect.values == ()


def with_lambda_8e3(summaries: dict) -> dict:
    """`summaries` and lambda = 8e3 for seeds 0-2: task 1 rises by 45, 70, 20% over tasks 2-3."""
    modal, exposure, focus = TASKS
    for seed, rise in enumerate([0.45, 0.7, 0.2]):
        summaries[(seed, "lambda-8e3")] = fake_summary(
            "lambda-8e3", seed, {modal: [1.0, 1.2, 1 + rise], exposure: [2.0, 2.0], focus: [0.3]}
        )
    return summaries


def test_the_lambda_sweep_names_the_smallest_lambda_that_keeps_task_1_better_than_none():
    summaries = with_lambda_8e3(fake_summaries())  # task 1: +50, 60, 40% without EWC, 0 with 8e4
    rows = {row.variant: row for row in ablation_data.lambda_sweep(summaries)}
    assert list(rows) == list(LAMBDA_SWEEP)
    low, paper, off = rows["lambda-8e3"], rows["baseline"], rows["no-ewc"]
    assert low.forgetting.values == pytest.approx((45.0, 70.0, 20.0))
    assert low.protection.values == pytest.approx((5.0, -10.0, 20.0))
    assert low.protects_task_1 == low.still_forgets_task_1 == NOT_RESOLVED  # 45 ± 25: < 2 sd
    assert off.still_forgets_task_1 == "yes" and off.protects_task_1 == "n/a"  # the reference
    assert paper.protection.values == pytest.approx((50.0, 60.0, 40.0))
    assert paper.protects_task_1 == "yes"
    assert paper.still_forgets_task_1 == NOT_RESOLVED, "no rise is not shown to be absent"
    assert paper.task3_loss.mean == pytest.approx(0.4)
    assert rows["lambda-8e5"].protects_task_1 == "n/a", "not trained"
    assert ablation_data.smallest_lambda_protecting_task_1(list(rows.values())) is paper
    one_seed = {key: value for key, value in summaries.items() if key[0] == 0}
    first = {row.variant: row for row in ablation_data.lambda_sweep(one_seed)}
    assert first["baseline"].protects_task_1 == NOT_RESOLVED, "one seed decides nothing"
    assert ablation_data.smallest_lambda_protecting_task_1(list(first.values())) is None


def test_the_report_renders_from_summaries_with_and_without_matplotlib(tmp_path, monkeypatch):
    summaries = tmp_path / "summaries"
    for summary in with_lambda_8e3(fake_summaries()).values():
        ablation_data.write_summary(summaries, summary)
    ablation_report.write_report(summaries, tmp_path / "ablations.md", tmp_path / "fig")
    text = (tmp_path / "ablations.md").read_text()
    assert "| EWC keeps task 1 (multi-modal) while task 2 is learnt |" in text
    assert "+40 ± 8 | **holds** |" in text
    assert "Smallest lambda that keeps task 1 better than lambda = 0: **80000**" in text
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == [
        "fig18-similarity-loss.png",
        "fig19-importance.png",
        "lambda-sweep.png",
    ]
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    lines = []
    ablation_report.write_report(summaries, tmp_path / "plain.md", tmp_path / "none", lines.append)
    assert "(fig18-similarity-loss.png was not drawn" in (tmp_path / "plain.md").read_text()
    assert not (tmp_path / "none").exists() and any("figures skipped" in x for x in lines)


def test_a_report_of_the_ewc_pair_alone_shows_only_what_it_trained(tmp_path):
    summaries = tmp_path / "summaries"
    for summary in fake_summaries().values():  # baseline and no-ewc only
        ablation_data.write_summary(summaries, summary)
    title = "The EWC ablation at the paper's schedule"
    (tmp_path / "fig").mkdir()
    (tmp_path / "fig" / "lambda-sweep.png").write_bytes(b"drawn for an earlier report")
    ablation_report.write_report(summaries, tmp_path / "pair.md", tmp_path / "fig", title=title)
    text = (tmp_path / "pair.md").read_text()
    assert text.startswith(f"# {title}\n")
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Runs",
        "## Fig. 18: EWC keeps the earlier tasks",
        "## Fig. 19: the importance of the weights",
    ]
    variants = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| `")]
    assert variants == ["`baseline`", "`no-ewc`"], "variants never trained are not listed"
    assert "`lambda-8e3` starts from" not in text
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == [
        "fig18-similarity-loss.png",
        "fig19-importance.png",
    ], "a figure of a section not shown is removed"


def no_folder(runs: Path) -> None:
    pass


def empty_run_folder(runs: Path) -> None:
    (runs / "seed0" / "baseline").mkdir(parents=True)


def broken_config(runs: Path) -> None:
    empty_run_folder(runs)
    (runs / "seed0" / "baseline" / "config.json").write_text("{")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (no_folder, "is not a folder of ablation runs"),
        (empty_run_folder, None),
        (broken_config, "seed0/baseline/config.json: cannot be read as JSON"),
    ],
)
def test_cli_bad_runs_folder(tmp_path, make, message):
    runs = tmp_path / "runs"
    make(runs)
    command = [sys.executable, "-m", "u2fusion_tf.ablation_report", "--runs_dir", str(runs)]
    command += ["--summaries", str(tmp_path / "out" / "runs"), "--report"]
    command += [str(tmp_path / "out" / "ablations.md"), "--figures", str(tmp_path / "out")]
    command += ["--data_root", str(tmp_path / "no-data")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if message is None:  # nothing trained: the report says so
        assert result.returncode == 0, result.stderr
        text = (tmp_path / "out" / "ablations.md").read_text()
        assert "No run has been summarised yet: nothing is trained." in text
        assert "## Fig. 18" not in text and "lambda" not in text, "no section without its runs"
        return
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists(), "no partial output"


def test_a_summary_of_another_format_is_refused(tmp_path):
    (tmp_path / "seed0-baseline.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(Exception, match="summary format 99, expected 1"):
        ablation_data.read_summaries(tmp_path)


REPORTS = Path(__file__).resolve().parent.parent / "reports"


@pytest.mark.parametrize(
    "name",
    sorted({"ablations"} | {p.parent.name for p in REPORTS.glob("ablations*/runs")}),
)
def test_the_committed_report_is_what_the_committed_summaries_render(name):
    """Each ablation report (reports/ablations.md, and the paper-schedule one once its runs are
    summarised) follows from the run summaries kept beside it in the repository."""
    summaries = ablation_data.read_summaries(REPORTS / name / "runs")
    assert (0, "baseline") in summaries, "the run summaries are kept in the repository"
    captions = dict.fromkeys(ablation_report.FIGURES.values())
    for figure, (caption, _) in ablation_report.figures_to_draw(summaries).items():
        captions[figure] = caption
    committed = (REPORTS / f"{name}.md").read_text(encoding="utf-8")
    title = committed.splitlines()[0].removeprefix("# ")
    text = ablation_report.render(summaries, captions, Path(name), title)
    assert text == committed


def test_the_report_names_the_folders_of_its_training_command_not_this_machines():
    summaries = fake_summaries()
    machine = ["--data_dir", "/home/me/patches", "--run_dir", "/scratch/r/seed0/baseline"]
    summaries[(0, "baseline")]["command"] = ["-m", "u2fusion_tf.train", *machine, "--seed", "0"]
    text = ablation_report.render(summaries, {}, Path("ablations"))
    assert "/home/me" not in text and "/scratch" not in text
    assert (
        "`python -m u2fusion_tf.train --data_dir DATA_DIR --run_dir RUNS_DIR/seed0/baseline "
        "--seed 0`" in text
    )


def test_figures_and_table_5_average_only_runs_that_learnt_every_task():
    summaries = fake_summaries()
    summaries[(3, "baseline")] = {**summaries[(0, "baseline")], "seed": 3, "tasks_done": 1}
    assert [s["seed"] for s in ablation_data.finished_runs(summaries, "baseline")] == [0, 1, 2]


def test_the_degrees_table_gives_one_seed_without_a_spread_and_three_with_one():
    modal, exposure, focus = TASKS
    losses = {modal: [1.0, 1.0, 1.0], exposure: [2.0, 2.0], focus: [0.3]}
    summaries = {}
    for seed, (adaptive, fixed) in enumerate([(1.1, 1.0), (1.25, 1.0), (1.4, 1.0)]):
        for variant, value in (("baseline", adaptive), ("fixed-degrees", fixed)):
            summary = fake_summary(variant, seed, losses)
            scores = {metric: [value, value] for metric in ablation_data.FIG22_METRICS}
            summary["scores"] = {"standard": {"mfifb": {"stems": ["a", "b"], **scores}}}
            summaries[(seed, variant)] = summary
    one_seed = {key: value for key, value in summaries.items() if key[0] == 0}
    row = ablation_report.degrees_table(one_seed).splitlines()[-1]
    assert row.startswith("| mfifb | +10% (n=1), not resolved") and "nan" not in row
    row = ablation_report.degrees_table(summaries).splitlines()[-1]
    assert "| +25% ± 15 (n=3), not resolved at this schedule |" in row  # 25 < 2 sd = 30
