"""The paper's ablations (Sec. 5) as this code reproduces them: ``make ablation-report``.

Two steps, so that runs trained in different sittings report together::

    python -m u2fusion_tf.ablation_report --runs_dir runs/ablations \\
        --summaries reports/ablations/runs --report reports/ablations.md

1. With ``--runs_dir``: every run folder of `u2fusion_tf.variants` found there
   (``seed<k>/<variant>``) is summarised into ``<summaries>/seed<k>-<variant>.json``
   (`u2fusion_tf.ablation_data`): its held-out loss curves, mu after each task, and for finished
   models of Fig. 22 and Table 5 their scores on every test set. A summary already up to date
   is kept as it is.
2. The report is rendered from all summaries: every claim of the paper's Sec. 5 with its effect
   per seed, mean ± sd and the verdict by the rule of `u2fusion_tf.verdicts`; the tables behind
   them as mean ± sd over seeds; the lambda sweep; Figs. 18 (mean curves with a band of ± one sd
   over seeds), 19 and the sweep's figure (matplotlib, ``pip install -e ".[plots]"``; without it
   the report keeps all its tables and says which figures were skipped).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from absl import flags

from u2fusion_tf import cli
from u2fusion_tf.ablation_data import (
    DEGREE_RUNS,
    EWC_RUNS,
    FIG22_METRICS,
    MU_LOG10_EDGES,
    MU_QUANTILES,
    ORDER_RUNS,
    Claim,
    LambdaRow,
    claims,
    finished_runs,
    first_loss_in_own_task,
    lambda_sweep,
    loss_at_task_end,
    mean_score,
    per_seed,
    read_summaries,
    relative,
    seeds,
    smallest_lambda_protecting_task_1,
    summarize_run,
    summary_name,
    up_to_date,
    write_summary,
)
from u2fusion_tf.catalogue import resolve_data_root
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.files import write_atomically
from u2fusion_tf.published import CLAIMS, PAPER_TABLE_5, TABLE5_SETS
from u2fusion_tf.runs import read_json, read_run
from u2fusion_tf.tables import markdown_table, png_bytes, pyplot
from u2fusion_tf.variants import LAMBDA_SWEEP, SHARES_FIRST_TASK, VARIANTS, run_folder
from u2fusion_tf.verdicts import SEED_SDS, seed_verdict

logger = logging.getLogger(__name__)


FLAGS = flags.FLAGS

MISSING = "n/a"
"""A table cell without a value (a task not learnt yet, a variant not trained)."""
SECTIONS = {
    "fig18": ("Fig. 18: EWC keeps the earlier tasks", "Sec. 5.1"),
    "fig19": ("Fig. 19: the importance of the weights", "Sec. 5.1"),
    "fig22": ("Fig. 22: adaptive information preservation degrees", "Sec. 5.3"),
    "table5": ("Table 5: the training order", "Sec. 5.4"),
}
SECTION_RUNS = {
    "fig18": EWC_RUNS,
    "fig19": EWC_RUNS,
    "fig22": DEGREE_RUNS,
    "table5": ORDER_RUNS,
    "lambda": tuple(v for v in LAMBDA_SWEEP if v not in EWC_RUNS),
}
"""The variants each section of the report is about (beside the baseline, and for the lambda
sweep beside the EWC pair too)."""
TITLE = "The paper's ablations reproduced by this code"


# --- step 1: summaries of the run folders --------------------------------------------------------


def update_summaries(
    runs_dir: Path,
    summaries_dir: Path,
    data_root: Path,
    out_dir: Path,
    max_pairs: int = 0,
    log: Callable[[str], None] = logger.info,
) -> list[Path]:
    """Summarises every run folder under `runs_dir` that has finished a task and whose summary
    is missing or behind; returns the summaries written. A summary of more tasks than its run
    folder now holds (the folder was trained again only in part, e.g. to restart a partner from
    its first task) is kept: the finished run it records cannot be read again."""
    if not runs_dir.is_dir():
        raise U2FusionError(f"{runs_dir}: is not a folder of ablation runs")
    written = []
    for seed_dir in sorted(runs_dir.glob("seed*")):
        suffix = seed_dir.name.removeprefix("seed")
        if not suffix.isdigit():
            continue
        seed = int(suffix)
        for variant in VARIANTS:
            run = read_run(run_folder(runs_dir, seed, variant))
            if run is None or run.tasks_done == 0:
                continue
            path = summaries_dir / summary_name(seed, variant)
            previous = read_json(path) if path.is_file() else None
            if up_to_date(previous, run, variant, max_pairs):
                continue
            if previous is not None and previous.get("tasks_done", 0) > run.tasks_done:
                log(
                    f"kept {path}: it records {previous['tasks_done']} tasks, "
                    f"the run folder has {run.tasks_done}"
                )
                continue
            log(f"summarising seed {seed}, {variant} ({run.tasks_done} tasks done)")
            summary = summarize_run(
                run, variant, seed, data_root, out_dir, max_pairs, log, previous
            )
            written.append(write_summary(summaries_dir, summary))
    return written


# --- step 2: the report --------------------------------------------------------------------------


def sections_with_runs(summaries: dict) -> list[str]:
    """The sections of `SECTION_RUNS` with a run of a variant other than the baseline: a report
    of the EWC pair alone has no Table 5 of order variants never trained."""
    trained = {variant for _, variant in summaries} - {"baseline"}
    return [key for key, variants in SECTION_RUNS.items() if trained & set(variants)]


def mean_sd(values: Sequence[float], digits: int = 4) -> str:
    """'mean ± sd' over seeds (sample sd), or the value alone for one seed."""
    if not values:
        return MISSING
    if len(values) == 1:
        return f"{values[0]:.{digits}g}"
    return f"{np.mean(values):.{digits}g} ± {np.std(values, ddof=1):.2g}"


def claims_table(found: Sequence[Claim], section: str, seed_list: Sequence[int]) -> str:
    header = ["claim", "effect (positive: the claim's direction)"]
    header += [f"seed {seed}" for seed in seed_list] + ["mean ± sd", "verdict"]
    rows = []
    for item in (c for c in found if c.section == section):
        effect = item.effect
        values = [f"{v:+.3g}" for v in effect.values]
        values += [MISSING] * (len(seed_list) - len(values))
        summary = (
            MISSING
            if not effect.values
            else f"{effect.mean:+.3g} ± {effect.sd:.2g}"
            if len(effect.values) > 1
            else f"{effect.mean:+.3g}"
        )
        rows.append([item.text, item.measure, *values, summary, f"**{effect.verdict}**"])
    return markdown_table(header, rows)


def forgetting_table(summaries: dict) -> str:
    """Each task's held-out L_sim, mean ± sd over seeds: at its first validation in its own
    task, at the end of its own task and at the end of every later task."""
    order = next(iter(summaries.values()))["task_order"] if summaries else []
    header = ["validated task", "run", "first validation in its task"]
    header += [f"end of task {k}: {task}" for k, task in enumerate(order, 1)]
    rows = []
    for task in order:
        for variant in EWC_RUNS:
            first = per_seed(summaries, (variant,), lambda s, t=task: first_loss_in_own_task(s, t))
            cells = [
                mean_sd(
                    per_seed(
                        summaries, (variant,), lambda s, t=task, k=k: loss_at_task_end(s, t, k)
                    )
                )
                for k in range(1, len(order) + 1)
            ]
            rows.append([task, variant, mean_sd(first), *cells])
    return markdown_table(header, rows)


def mu_table(summaries: dict) -> str:
    header = ["run", "after task", "weights", "mu = 0"]
    header += [f"q{round(q * 100)}" for q in MU_QUANTILES] + ["mean"]
    rows = []
    for variant in EWC_RUNS:
        for k in range(1, 4):
            stats = [
                s["mu"][k - 1]
                for (_, v), s in sorted(summaries.items())
                if v == variant and len(s["mu"]) >= k
            ]
            if not stats:
                continue
            rows.append(
                [
                    variant,
                    str(k),
                    str(stats[0]["weights"]),
                    mean_sd([s["zero_share"] for s in stats], 3),
                    *(
                        mean_sd([s["quantiles"][i] for s in stats], 3)
                        for i in range(len(MU_QUANTILES))
                    ),
                    mean_sd([s["mean"] for s in stats], 3),
                ]
            )
    return markdown_table(header, rows)


def degrees_table(summaries: dict) -> str:
    """Every test set and metric: adaptive / fixed - 1 (%), mean ± sd over seeds, verdict."""
    names = sorted(
        {
            n
            for (_, v), s in summaries.items()
            if v in DEGREE_RUNS
            for n in s["scores"].get("standard", {})
        }
    )
    rows = []
    for name in names:
        cells = []
        for metric in FIG22_METRICS:
            effect = seed_verdict(
                per_seed(
                    summaries,
                    DEGREE_RUNS,
                    lambda on, off, m=metric, n=name: _percent(
                        relative(
                            mean_score(on, "standard", n, m),
                            mean_score(off, "standard", n, m),
                        )
                    ),
                )
            )
            cells.append(
                MISSING if not effect.values else f"{_effect_cell(effect, '%')}, {effect.verdict}"
            )
        rows.append([name, *cells])
    return markdown_table(["test set", *FIG22_METRICS], rows)


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def order_label(order: Sequence[str]) -> str:
    """multi-modal, multi-exposure, ... -> modal→exposure→focus, as the paper writes orders."""
    return "→".join(task.removeprefix("multi-") for task in order)


def table5(summaries: dict) -> str:
    """CC / MG per test set: the paper's row of each training order above ours (mean over
    seeds)."""
    header = ["training order", "source", *(f"{d} ({s})" for d, s in TABLE5_SETS.items())]
    rows = []
    for variant in ORDER_RUNS:
        runs = finished_runs(summaries, variant)
        if not runs:
            continue
        order = tuple(runs[0]["task_order"])
        paper = PAPER_TABLE_5.get(order)
        if paper is not None:
            cells = [f"{cc:.4f} / {mg:.4f}" for cc, mg in paper.values()]
            rows.append([order_label(order), "paper, Table 5", *cells])
        ours = []
        for name in TABLE5_SETS.values():
            cc = [mean_score(s, "paper", name, "CC") for s in runs]
            mg = [mean_score(s, "paper", name, "AG") for s in runs]
            cc, mg = [v for v in cc if v is not None], [v for v in mg if v is not None]
            ours.append(f"{np.mean(cc):.4f} / {np.mean(mg):.4f}" if cc and mg else MISSING)
        seeds_used = f"{len(runs)} seed" + ("s" if len(runs) > 1 else "")
        rows.append([order_label(order), f"`{variant}` ({seeds_used})", *ours])
    return markdown_table(header, rows)


def lambda_table(rows: Sequence[LambdaRow]) -> str:
    body = []
    for row in rows:
        body.append(
            [
                f"{row.ewc_lambda:g}" + (" (the paper's)" if row.variant == "baseline" else ""),
                f"`{row.variant}`",
                _effect_cell(row.forgetting, "%"),
                row.still_forgets_task_1,
                _effect_cell(row.protection, " points"),
                row.protects_task_1,
                _effect_cell(row.task3_loss, ""),
            ]
        )
    header = [
        "lambda",
        "run",
        "task 1's held-out L_sim rise by the end of task 3 (%, mean ± sd over seeds)",
        "task 1 still forgotten",
        "that rise without EWC minus with this lambda, same seed (points of %, mean ± sd)",
        "task 1 kept better than with lambda = 0",
        "task 3's held-out L_sim at its end",
    ]
    return markdown_table(header, body)


def _effect_cell(effect, unit: str) -> str:
    if not effect.values:
        return MISSING
    sd = f" ± {effect.sd:.3g}" if len(effect.values) > 1 else ""
    return (
        f"{effect.mean:+.3g}{unit}{sd} (n={len(effect.values)})"
        if unit
        else f"{effect.mean:.4g}{sd} (n={len(effect.values)})"
    )


# --- figures -------------------------------------------------------------------------------------


def panel_title(variant: str, runs: Sequence[dict]) -> str:
    """A figure panel's title: the run and how many seeds it averages."""
    return f"{variant} ({len(runs)} seed{'' if len(runs) == 1 else 's'})"


def plot_similarity_loss(plt, summaries: dict) -> bytes:
    """Fig. 18: one panel per run (without EWC, with), each task's held-out L_sim against the
    training step, the mean over seeds with a band of ± one sd, the task ends dotted."""
    figure, axes = plt.subplots(1, len(EWC_RUNS), figsize=(11, 4), sharey=True)
    for axis, variant in zip(np.atleast_1d(axes), EWC_RUNS, strict=True):
        runs = finished_runs(summaries, variant)
        for task in runs[0]["task_order"] if runs else []:
            steps = sorted(set.intersection(*(set(s["validation"][task]["steps"]) for s in runs)))
            values = np.array(
                [
                    [
                        dict(
                            zip(
                                s["validation"][task]["steps"],
                                s["validation"][task]["values"],
                                strict=True,
                            )
                        )[t]
                        for t in steps
                    ]
                    for s in runs
                ]
            )
            if not steps:
                continue
            mean = values.mean(axis=0)
            sd = values.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
            axis.plot(steps, mean, marker=".", markersize=3, linewidth=1, label=task)
            axis.fill_between(steps, mean - sd, mean + sd, alpha=0.25)
        for end in runs[0]["task_end_steps"] if runs else []:
            axis.axvline(end, color="gray", linestyle=":", linewidth=1)
        axis.set_title(panel_title(variant, runs))
        axis.set_xlabel("training step")
        axis.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("held-out similarity loss L_sim")
    np.atleast_1d(axes)[0].legend()
    return png_bytes(plt, figure)


def plot_mu_histograms(plt, summaries: dict) -> bytes:
    """Fig. 19: one panel per run, the distribution of log10 mu after each task (the mean
    over seeds of the shares of the weights per bin; mu = 0 is counted in the table)."""
    edges = np.array(MU_LOG10_EDGES)
    figure, axes = plt.subplots(1, len(EWC_RUNS), figsize=(11, 4), sharey=True)
    for axis, variant in zip(np.atleast_1d(axes), EWC_RUNS, strict=True):
        runs = finished_runs(summaries, variant)
        for k in range(1, 4):
            stats = [s["mu"][k - 1] for s in runs if len(s["mu"]) >= k]
            if stats:
                shares = np.mean(
                    [np.array(s["log10_histogram"]) / s["weights"] for s in stats], axis=0
                )
                axis.stairs(shares, edges, label=f"after task {k}")
        axis.set_title(panel_title(variant, runs))
        axis.set_xlabel("log10 mu (Fisher diagonal, Eq. 9)")
        axis.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("share of the weights")
    np.atleast_1d(axes)[0].legend()
    return png_bytes(plt, figure)


def plot_lambda_sweep(plt, rows: Sequence[LambdaRow]) -> bytes:
    """Task 1's forgetting and task 3's own held-out loss against lambda (mean ± sd)."""
    shown = [row for row in rows if row.forgetting.values]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    labels = [f"{row.ewc_lambda:g}" for row in shown]
    for axis, values, title in (
        (
            axes[0],
            [row.forgetting for row in shown],
            "task 1's held-out L_sim rise by the end of task 3 (%)",
        ),
        (axes[1], [row.task3_loss for row in shown], "task 3's held-out L_sim at its end"),
    ):
        means = [v.mean for v in values]
        sds = [0.0 if math.isnan(v.sd) else v.sd for v in values]
        axis.errorbar(range(len(shown)), means, yerr=sds, marker="o", capsize=4)
        axis.set_xticks(range(len(shown)), labels)
        axis.set_xlabel("EWC lambda")
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
    return png_bytes(plt, figure)


# --- the report ----------------------------------------------------------------------------------


def runs_section(summaries: dict) -> list[str]:
    """Which runs the report rests on (seed by variant: tasks done and code commit), and the
    settings they share."""
    seed_list = seeds(summaries)
    if not summaries:
        return ["## Runs", "", "No run has been summarised yet: nothing is trained.", ""]
    trained = {variant for _, variant in summaries}
    rows = []
    for variant in (v for v in VARIANTS if v in trained):
        cells = []
        for seed in seed_list:
            summary = summaries.get((seed, variant))
            if summary is None:
                cells.append("not trained")
                continue
            done = f"{summary['tasks_done']} of {len(summary['task_order'])} tasks"
            cells.append(f"{done}, `{summary['commit'][:10]}`")
        rows.append([f"`{variant}`", *cells])
    lines = [
        "## Runs",
        "",
        markdown_table(["variant", *(f"seed {seed}" for seed in seed_list)], rows),
        "",
    ]
    for variant, parent in SHARES_FIRST_TASK.items():
        if variant not in trained:
            continue
        lines.append(
            f"`{variant}` starts from `{parent}`'s run folder (same seed) as it stood after task 1."
        )
    if summaries:
        first = summaries[min(summaries)]
        lines += [
            "",
            f"A training command (seed {first['seed']}, `{first['variant']}`; DATA_DIR holds the "
            "prepared patches, RUNS_DIR is the `--runs_dir` of `python -m "
            f"u2fusion_tf.ablations`): `python {portable_command(first)}`.",
        ]
    return [*lines, ""]


def portable_command(summary: dict) -> str:
    """The run's training command with this machine's folders named by what they are, so that
    the report says how to train the run anywhere."""
    folders = {
        "--data_dir": "DATA_DIR",
        "--run_dir": str(run_folder("RUNS_DIR", summary["seed"], summary["variant"])),
    }
    command = list(summary["command"])
    for position, part in enumerate(command[:-1]):
        if part in folders:
            command[position + 1] = folders[part]
    return " ".join(command)


def render(summaries: dict, figures: dict[str, str | None], link: Path, title: str = TITLE) -> str:
    """The report's Markdown from the summaries; `figures` maps each figure's file name to
    its caption, or None when it was not drawn."""
    found = claims(summaries)
    seed_list = seeds(summaries)
    shown = sections_with_runs(summaries)
    lines = [
        f"# {title}",
        "",
        "Written by `make ablation-report` (`python -m u2fusion_tf.ablation_report`) from the "
        "run summaries in its `--summaries` folder. Every variant is trained with the same "
        "schedule, once per seed; only what its ablation changes differs.",
        "",
        "**The rule** (`u2fusion_tf.verdicts`): each claim is tested by an effect measured once "
        "per seed, signed so that positive is the claim's direction. A claim **holds** when the "
        f"effect has the same sign in every seed and its mean exceeds {SEED_SDS:g} sd between "
        "seeds; it **does not hold** when the same is true in the opposite direction; otherwise "
        "it is **not resolved at this schedule**. A claim that an effect is absent does not "
        "hold when the effect counts by that rule, and is otherwise not resolved.",
        "",
        *runs_section(summaries),
    ]
    for key, (heading, where) in SECTIONS.items():
        if key not in shown:
            continue
        lines += [f"## {heading}", "", f"> The paper ({where}): “{CLAIMS[key]}”", ""]
        lines += [claims_table(found, key, seed_list), ""]
        if key == "fig18":
            lines += [
                "Held-out similarity loss L_sim (Eq. 6) of each task, mean ± sd over seeds: at "
                "its first validation while it is trained, then at the end of every task.",
                "",
                forgetting_table(summaries),
                "",
            ]
        elif key == "fig19":
            lines += [
                "mu (Eq. 9) over all weights of the generator after each task, mean ± sd over "
                "seeds of each quantile.",
                "",
                mu_table(summaries),
                "",
            ]
        elif key == "fig22":
            lines += [
                "Every test set: adaptive (`baseline`) / fixed (`fixed-degrees`) - 1 per metric "
                "(standard convention), mean ± sd over seeds, with the verdict by the rule.",
                "",
                degrees_table(summaries),
                "",
            ]
        elif key == "table5":
            lines += [
                "CC / MG per test set (paper convention; MG is the average gradient AG), the "
                "paper's row above the mean over seeds of ours, on our copies of the paper's "
                "test pairs (`u2fusion_test`, fewer pairs than the paper scored).",
                "",
                table5(summaries),
                "",
            ]
        lines += _figure_lines(key, figures, link)
    if "lambda" not in shown:
        return "\n".join(lines)
    rows = lambda_sweep(summaries)
    kept = smallest_lambda_protecting_task_1(rows)
    lines += [
        "## EWC's lambda",
        "",
        "EWC's strength depends on the scale of the Fisher information, which depends on the "
        "loss and on the VGG16 head of the information measure. The sweep trains tasks 2-3 "
        "from the baseline's task-1 weights (same seed) with lambda a tenth, ten and a hundred "
        "times the paper's; lambda = 0 is `no-ewc`. By the rule above, task 1 is **still "
        "forgotten** when its rise counts, and **kept better than with lambda = 0** when its "
        "rise is smaller than without EWC, seed by seed, by more than the spread between seeds "
        "(that a rise is absent, seeds cannot show).",
        "",
        lambda_table(rows),
        "",
        "Smallest lambda that keeps task 1 better than lambda = 0: "
        + (
            f"**{kept.ewc_lambda:g}** (task 1 still forgotten with it: "
            f"{kept.still_forgets_task_1})."
            if kept
            else "**not resolved** by the runs trained so far."
        ),
        "",
        *_figure_lines("lambda", figures, link),
    ]
    return "\n".join(lines)


FIGURES = {
    "fig18": "fig18-similarity-loss.png",
    "fig19": "fig19-importance.png",
    "lambda": "lambda-sweep.png",
}


def _figure_lines(key: str, figures: dict[str, str | None], link: Path) -> list[str]:
    name = FIGURES.get(key)
    if name is None:
        return []
    caption = figures.get(name)
    if caption is None:
        return [
            f'({name} was not drawn: matplotlib is not installed; `pip install -e ".[plots]"`.)',
            "",
        ]
    return [f"![{caption}]({(link / name).as_posix()})", ""]


def figures_to_draw(summaries: dict) -> dict[str, tuple[str, Callable]]:
    """The figures the summaries have data for: file name -> (caption, plot(plt, summaries))."""
    drawn: dict[str, tuple[str, Callable]] = {}
    shown = sections_with_runs(summaries)
    if "fig18" in shown:
        drawn[FIGURES["fig18"]] = ("Fig. 18", plot_similarity_loss)
        drawn[FIGURES["fig19"]] = ("Fig. 19", plot_mu_histograms)
    if "lambda" in shown:
        drawn[FIGURES["lambda"]] = (
            "EWC's lambda",
            lambda plt, summaries: plot_lambda_sweep(plt, lambda_sweep(summaries)),
        )
    return drawn


def write_report(
    summaries_dir: Path,
    report: Path,
    figures_dir: Path,
    log: Callable[[str], None] = logger.info,
    title: str = TITLE,
) -> dict:
    """Renders the report and its figures from the summaries; returns the summaries."""
    summaries = read_summaries(summaries_dir)
    plt = pyplot()
    images: dict[str, bytes] = {}
    captions: dict[str, str | None] = dict.fromkeys(FIGURES.values())
    if plt is not None:
        for name, (caption, plot) in figures_to_draw(summaries).items():
            images[name] = plot(plt, summaries)
            captions[name] = caption
    link = Path(os.path.relpath(figures_dir, report.parent))
    text = render(summaries, captions, link, title)
    if images:
        figures_dir.mkdir(parents=True, exist_ok=True)
    for name, payload in images.items():
        write_atomically(figures_dir / name, payload)
    if plt is not None:  # a figure of a section no longer shown would only mislead
        for name in set(FIGURES.values()) - set(images):
            (figures_dir / name).unlink(missing_ok=True)
    report.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(report, text.encode())
    if plt is None:
        log('figures skipped (matplotlib is not installed): pip install -e ".[plots]"')
    log(f"wrote {report}")
    return summaries


def main(argv: list[str]) -> None:
    del argv
    summaries_dir = Path(FLAGS.summaries)
    if FLAGS.runs_dir:
        update_summaries(
            Path(FLAGS.runs_dir),
            summaries_dir,
            resolve_data_root(FLAGS.data_root),
            Path(FLAGS.out_dir),
            FLAGS.max_pairs,
            cli.log,
        )
    write_report(summaries_dir, Path(FLAGS.report), Path(FLAGS.figures), cli.log, FLAGS.title)


if __name__ == "__main__":
    from u2fusion_tf import common_flags

    flags.DEFINE_string(
        "runs_dir", None, "Folder of the ablation runs (seed<k>/<variant>) to summarise first."
    )
    flags.DEFINE_string(
        "summaries", "reports/ablations/runs", "Folder of the run summaries (JSON)."
    )
    flags.DEFINE_string("report", "reports/ablations.md", "The Markdown report to write.")
    flags.DEFINE_string("figures", "reports/ablations", "Folder for the report's figures.")
    flags.DEFINE_string("title", TITLE, "The report's title.")
    common_flags.define_data_root()
    flags.DEFINE_string("out_dir", "results/ablations", "Where the fused test images go.")
    common_flags.define_max_pairs()
    cli.run_main(
        main,
        on_interrupt="summaries already written are complete; run it again",
    )
