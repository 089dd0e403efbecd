"""The paper's ablations (Sec. 5) as this code reproduces them: the report of ``make ablations``.

Reads the run folders that `u2fusion_tf.ablations` trains (``<runs_dir>/<variant>``: config.json,
provenance.json, TensorBoard events, ``task<k>-<task>.weights.h5``, ``fisher-task<k>.npz``) and
writes a Markdown report with its figures::

    python -m u2fusion_tf.ablation_report --runs_dir runs/ablations \\
        --report checkpoints/ablations.md --figures checkpoints/ablations

- Fig. 18 (EWC keeps the earlier tasks): the held-out L_sim of every task learnt so far through
  training, without EWC (``no-ewc``) and with it (``baseline``), and a table of each task's
  loss at the end of every task;
- Fig. 19 (importance of the weights): histograms of mu (the mean Fisher diagonal, Eq. 9) after
  each task, without and with EWC, and a table of its quantiles;
- Fig. 22 (adaptive degrees): ``baseline`` vs ``fixed-degrees`` on every test set (SSIM, Qabf,
  VIF, EI, AG in the standard convention) and a figure of the first pair of each set;
- Table 5 (task order): CC and MG (AG in the paper convention) of the three training orders on
  the paper's test pairs, beside the paper's Table 5 (`PAPER_TABLE_5`).

Each table names the runs behind it; the report's first section gives their code commit,
command and settings. Variants that are missing or unfinished are named and left out. Figs. 18
and 19 are drawn with matplotlib (``pip install -e ".[plots]"``); without it the report keeps
all its tables and says which figures were skipped. Fused images go to
``<out_dir>/fused/<set>/<variant>/`` (8-bit PNG, what is scored); every run fuses again, so the
numbers always match the weights in the run folders.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from u2fusion_tf import cli
from u2fusion_tf.ablations import SHARES_FIRST_TASK, VARIANTS
from u2fusion_tf.datasets import DATA_ROOT_HELP, evaluation_sets, resolve_data_root
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.evaluate import format_table, summarize
from u2fusion_tf.files import write_atomically
from u2fusion_tf.paper import PUBLISHED

EWC_RUNS = ("no-ewc", "baseline")
"""Fig. 18-19: without EWC (the paper's first plot), then with it."""
DEGREE_RUNS = ("baseline", "fixed-degrees")
ORDER_RUNS = ("baseline", "exposure-first", "focus-first")
FIG22_METRICS = ("SSIM", "Qabf", "VIF", "EI", "AG")
TABLE5_METRICS = ("CC", "AG")
"""The paper's Table 5 reports CC / MG; MG is this project's AG."""
MISSING = "n/a"
"""A table cell without a value (a task not learnt yet, a variant not scored)."""
MU_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
HISTOGRAM_BINS = 60

TABLE5_SETS = {published.dataset: published.compared_with[0] for published in PUBLISHED}
"""The paper's test sets (those of its Tables 1-4, `u2fusion_tf.paper.PUBLISHED`) and our
copies of their pairs (`u2fusion_tf.evaluate`)."""
PAPER_TABLE_5 = {
    # Typed from the paper's Table 5 (CC / MG, means over each test set in the order of
    # TABLE5_SETS, no std given).
    order: dict(zip(TABLE5_SETS, scores, strict=True))
    for order, scores in (
        (
            ("multi-modal", "multi-exposure", "multi-focus"),
            [
                (0.5370, 0.0467),
                (0.6347, 0.0594),
                (0.8442, 0.0933),
                (0.8378, 0.0647),
                (0.8158, 0.0597),
                (0.9723, 0.0677),
            ],
        ),
        (
            ("multi-exposure", "multi-modal", "multi-focus"),
            [
                (0.5359, 0.0480),
                (0.6242, 0.0592),
                (0.8335, 0.0950),
                (0.8191, 0.0672),
                (0.8065, 0.0639),
                (0.9724, 0.0700),
            ],
        ),
        (
            ("multi-focus", "multi-modal", "multi-exposure"),
            [
                (0.5319, 0.0383),
                (0.6613, 0.0516),
                (0.8406, 0.0873),
                (0.8322, 0.0611),
                (0.8081, 0.0572),
                (0.9803, 0.0563),
            ],
        ),
    )
}
"""The paper's Table 5: training order -> its test set -> (CC, MG)."""

CLAIMS = {
    "fig18": "when training DenseNet on task 3 without EWC, the loss on the validation dataset "
    "of task 2 increases evidently [...] With EWC, the similarity losses of previous tasks are "
    "basically the same as those when they were trained.",
    "fig19": "Without EWC, not much difference is observed among the three distributions of "
    "μ_i obtained after three tasks [...] However, with EWC, the proportion of larger μ_i has "
    "increased significantly. [...] the decreased proportion of small values also shows that "
    "the redundancy of the network is decreasing.",
    "fig22": "When ω_1 and ω_2 are directly set to 0.5, the network fails to distinguish "
    "between focused and defocused regions. Therefore, the results suffer from blurred edges, "
    "while U2Fusion generates a much sharper appearance.",
    "table5": "the exchange of the training orders of multi-modal and multi-exposure image "
    "fusion has little effect on fusing multi-focus images [...] the results of the original "
    "training order maintain a higher correlation with the source images. [...] the mean "
    "gradient [...] drops from 0.0677 or 0.0700 to 0.0563 [when multi-focus comes first] [...] "
    "the order of multi-modal→multi-exposure→multi-focus shows the best performance.",
}
"""The paper's claim behind each ablation (Sec. 5.1, 5.3, 5.4), quoted above its table."""


# --- run folders -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One variant's run folder: its settings, provenance and what it has finished."""

    variant: str
    folder: Path
    config: dict
    provenance: dict

    @property
    def task_order(self) -> list[str]:
        return list(self.config["task_order"])

    def weights(self, task_number: int) -> Path:
        """The weights after task `task_number` (1-based)."""
        return self.folder / f"task{task_number}-{self.task_order[task_number - 1]}.weights.h5"

    def fisher(self, task_number: int) -> Path:
        return self.folder / f"fisher-task{task_number}.npz"

    @property
    def tasks_done(self) -> int:
        return sum(self.weights(k).is_file() for k in range(1, len(self.task_order) + 1))

    @property
    def finished(self) -> bool:
        return self.tasks_done == len(self.task_order)

    @property
    def commit(self) -> str:
        return str(self.provenance.get("commit", "not recorded"))

    def label(self) -> str:
        """``variant`` (commit `...`), for the line under a table."""
        return f"`{self.variant}` (commit `{self.commit}`)"


def read_json(path: Path) -> dict:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise U2FusionError(f"{path}: cannot be read as JSON ({error})") from error
    if not isinstance(content, dict):
        raise U2FusionError(f"{path}: expected a JSON object")
    return content


def read_runs(runs_dir: Path) -> dict[str, Run]:
    """The variants of `VARIANTS` that have a run folder with a config.json in `runs_dir`."""
    if not runs_dir.is_dir():
        raise U2FusionError(f"{runs_dir}: is not a folder of ablation runs")
    runs = {}
    for variant in VARIANTS:
        folder = runs_dir / variant
        if not (folder / "config.json").is_file():
            continue
        config = read_json(folder / "config.json")
        if not isinstance(config.get("task_order"), list):
            raise U2FusionError(f"{folder / 'config.json'}: has no task_order")
        provenance_path = folder / "provenance.json"
        provenance = read_json(provenance_path) if provenance_path.is_file() else {}
        runs[variant] = Run(variant, folder, config, provenance)
    return runs


def _table_lines(caption: str, table: str, runs: Sequence[Run]) -> list[str]:
    """A report section's body: what the table shows, the table, and the runs behind it."""
    return [caption, "", table, "", runs_line(runs), ""]


def runs_line(runs: Sequence[Run]) -> str:
    """The sentence under a table that says which runs produced it."""
    return (
        f"Runs: {', '.join(run.label() for run in runs)}; their commands and settings are under "
        "[Runs](#runs)."
    )


# --- TensorBoard events ------------------------------------------------------------------------


@dataclass(frozen=True)
class Events:
    """What a run folder's TensorBoard events hold: scalars by tag and step, and the steps at
    which every other tag was written. A step written twice (training resumed from an earlier
    checkpoint repeats steps) keeps its last value."""

    scalars: dict[str, dict[int, float]]
    steps: dict[str, set[int]]

    def series(self, tag: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of a scalar tag, by step."""
        points = sorted(self.scalars.get(tag, {}).items())
        return np.array([s for s, _ in points], int), np.array([v for _, v in points], float)


def read_events(folder: Path) -> Events:
    """All ``events.out.tfevents.*`` of a run folder, in the order they were written (file
    names start with the time). A truncated last record (a run stopped mid-write) ends its file."""
    import tensorflow as tf

    scalars: dict[str, dict[int, float]] = {}
    steps: dict[str, set[int]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        try:
            for record in tf.data.TFRecordDataset(str(path)):
                event = tf.compat.v1.Event.FromString(record.numpy())
                for value in event.summary.value:
                    steps.setdefault(value.tag, set()).add(event.step)
                    scalar = _scalar(value)
                    if scalar is not None:
                        scalars.setdefault(value.tag, {})[event.step] = scalar
        except tf.errors.DataLossError:
            continue
        except (tf.errors.OpError, ValueError) as error:
            raise U2FusionError(
                f"{path}: cannot be read as TensorBoard events ({error})"
            ) from error
    return Events(scalars, steps)


def _scalar(value) -> float | None:
    """The number of a scalar summary value (TF2 writes a 0-d tensor), else None."""
    if value.WhichOneof("value") == "simple_value":
        return float(value.simple_value)
    if value.WhichOneof("value") == "tensor":
        import tensorflow as tf

        array = tf.make_ndarray(value.tensor)
        if array.ndim == 0 and np.issubdtype(array.dtype, np.floating):
            return float(array)
    return None


FISHER_TAG = "ewc/fisher"
"""Written once at the end of every task (`u2fusion_tf.train.Trainer.consolidate`)."""


def task_end_steps(events: Events) -> list[int]:
    """The global step at which each finished task ended."""
    return sorted(events.steps.get(FISHER_TAG, ()))


# --- Fig. 18: the similarity loss through training ---------------------------------------------


def loss_at_task_ends(run: Run, events: Events) -> dict[str, list[float | None]]:
    """For every task of the run: its held-out L_sim at the end of each task (None before it
    was learnt, or when the task has not ended yet)."""
    ends = task_end_steps(events)
    table = {}
    for task in run.task_order:
        values = events.scalars.get(f"val/{task}", {})
        table[task] = [
            values.get(ends[k]) if k < len(ends) else None for k in range(len(run.task_order))
        ]
    return table


def forgetting_table(runs: Sequence[Run], events: dict[str, Events]) -> str:
    """Markdown: each task's held-out L_sim at the end of every task, per run, and its change
    from the end of its own task to the end of the last task the run has finished."""
    order = runs[0].task_order
    header = [
        "validated task",
        "run",
        *(f"end of task {k}: {task}" for k, task in enumerate(order, 1)),
        "change since its own task ended",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    tables = {run.variant: loss_at_task_ends(run, events[run.variant]) for run in runs}
    for index, task in enumerate(order):
        for run in runs:
            values = tables[run.variant][task]
            cells = [MISSING if v is None else f"{v:.4f}" for v in values]
            known = [v for v in values[index:] if v is not None]
            change = f"{known[-1] / known[0] - 1:+.1%}" if len(known) > 1 else MISSING
            lines.append("| " + " | ".join([task, run.variant, *cells, change]) + " |")
    return "\n".join(lines)


def plot_similarity_loss(plt, runs: Sequence[Run], events: dict[str, Events]) -> bytes:
    """Fig. 18: one panel per run, the held-out L_sim of each task against the training step,
    the task ends dotted."""
    figure, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 4), sharey=True)
    for axis, run in zip(np.atleast_1d(axes), runs, strict=True):
        for task in run.task_order:
            steps, values = events[run.variant].series(f"val/{task}")
            axis.plot(steps, values, marker=".", markersize=3, linewidth=1, label=task)
        for end in task_end_steps(events[run.variant]):
            axis.axvline(end, color="gray", linestyle=":", linewidth=1)
        axis.set_title(f"{run.variant} (EWC {'on' if run.config.get('use_ewc') else 'off'})")
        axis.set_xlabel("training step")
        axis.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("held-out similarity loss L_sim")
    np.atleast_1d(axes)[0].legend()
    return _png(plt, figure)


# --- Fig. 19: the importance of the weights ----------------------------------------------------


def read_mu(path: Path) -> np.ndarray:
    """All values of a ``fisher-task<k>.npz`` (one array per trainable variable), flattened."""
    try:
        with np.load(path) as arrays:
            return np.concatenate([arrays[name].ravel() for name in sorted(arrays.files)])
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise U2FusionError(f"{path}: cannot be read as a NumPy .npz file ({error})") from error


def mu_after_each_task(run: Run) -> list[np.ndarray]:
    """mu after task 1, 2, ... for the tasks whose Fisher file exists (in order, no gaps)."""
    found = []
    for k in range(1, len(run.task_order) + 1):
        if not run.fisher(k).is_file():
            break
        found.append(read_mu(run.fisher(k)))
    return found


def mu_table(runs: Sequence[Run], mus: dict[str, list[np.ndarray]]) -> str:
    """Markdown: per run and task, the count of weights, the share with mu = 0, quantiles, mean."""
    header = [
        "run",
        "after task",
        "weights",
        "mu = 0",
        *(f"q{round(q * 100)}" for q in MU_QUANTILES),
        "max",
        "mean",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for run in runs:
        for k, mu in enumerate(mus[run.variant], 1):
            cells = [
                run.variant,
                f"{k}: {run.task_order[k - 1]}",
                str(mu.size),
                f"{np.mean(mu == 0):.1%}",
                *(f"{value:.3g}" for value in np.quantile(mu, MU_QUANTILES)),
                f"{mu.max():.3g}",
                f"{mu.mean():.3g}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_mu_histograms(plt, runs: Sequence[Run], mus: dict[str, list[np.ndarray]]) -> bytes:
    """Fig. 19: one panel per run, the distribution of log10 mu after each task (shared bins;
    weights with mu = 0 are counted in the table)."""
    positive = [np.log10(mu[mu > 0]) for run in runs for mu in mus[run.variant]]
    low = min(float(p.min()) for p in positive if p.size)
    high = max(float(p.max()) for p in positive if p.size)
    bins = np.linspace(low, high, HISTOGRAM_BINS + 1)
    figure, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 4), sharey=True)
    for axis, run in zip(np.atleast_1d(axes), runs, strict=True):
        for k, mu in enumerate(mus[run.variant], 1):
            counts, _ = np.histogram(np.log10(mu[mu > 0]), bins)
            axis.stairs(counts / mu.size, bins, label=f"after task {k}: {run.task_order[k - 1]}")
        axis.set_title(f"{run.variant} (EWC {'on' if run.config.get('use_ewc') else 'off'})")
        axis.set_xlabel("log10 mu (Fisher diagonal, Eq. 9)")
        axis.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("share of the weights")
    np.atleast_1d(axes)[0].legend()
    return _png(plt, figure)


# --- figures -----------------------------------------------------------------------------------


def pyplot():
    """matplotlib's pyplot on a file-only backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(plt, figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


# --- Fig. 22 and Table 5: the trained models on the test sets ----------------------------------


def score_variants(
    runs: dict[str, Run],
    data_root: Path,
    out_dir: Path,
    max_pairs: int,
    log: Callable[[str], None],
) -> tuple[dict[str, dict], dict[str, dict], list[tuple[str, dict[str, Path]]], list[str]]:
    """Fuses every test set with the finished variants that Fig. 22 and Table 5 compare.

    Returns the Fig. 22 summaries (set -> variant -> metric -> (mean, std, n), standard
    convention), the Table 5 summaries (the same, paper convention, the sets of `TABLE5_SETS`),
    the figure's examples (the first pair of each set) and the pairs skipped.
    """
    from u2fusion_tf.fuse import fuse
    from u2fusion_tf.results import fuse_set, score_set
    from u2fusion_tf.weights import load_model

    needed = [v for v in dict.fromkeys((*DEGREE_RUNS, *ORDER_RUNS)) if v in runs]
    models = {v: load_model(runs[v].weights(len(runs[v].task_order))) for v in needed}
    if not models:
        return {}, {}, [], []
    table5_sets = set(TABLE5_SETS.values())
    fig22, table5, examples, skipped_all = {}, {}, [], []
    for evaluation_set in evaluation_sets(data_root):
        variants = [v for v in DEGREE_RUNS if v in models]
        if evaluation_set.name in table5_sets:
            variants += [v for v in ORDER_RUNS if v in models and v not in variants]
        if not variants:
            continue
        fusions = {v: (lambda images, model=models[v]: fuse(images, model)) for v in variants}
        folders, failures = fuse_set(evaluation_set, fusions, out_dir, max_pairs, log)
        skipped_all += failures
        by_variant = dict(zip(variants, folders, strict=True))
        compared = [by_variant[v] for v in DEGREE_RUNS if v in by_variant]
        if compared:
            rows, skipped = score_set(evaluation_set, compared, "standard", FIG22_METRICS, log)
            fig22[evaluation_set.name] = summarize(rows, FIG22_METRICS)
            skipped_all += skipped
            stem, path_a, path_b = evaluation_set.pairs()[0]
            examples.append(
                (
                    f"{evaluation_set.name}/{stem}",
                    {
                        "source A": path_a,
                        "source B": path_b,
                        **{v: by_variant[v] / f"{stem}.png" for v in DEGREE_RUNS if v in models},
                    },
                )
            )
        ordered = [by_variant[v] for v in ORDER_RUNS if v in by_variant]
        if evaluation_set.name in table5_sets and ordered:
            rows, _ = score_set(evaluation_set, ordered, "paper", TABLE5_METRICS, log)
            table5[evaluation_set.name] = summarize(rows, TABLE5_METRICS)
    return fig22, table5, examples, skipped_all


def degrees_change_table(fig22: dict[str, dict]) -> str:
    """Markdown: fixed-degrees / baseline - 1 per set and metric (negative: fixed is lower)."""
    header = ["test set", *FIG22_METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, summary in fig22.items():
        cells = [
            f"{summary['fixed-degrees'][m][0] / summary['baseline'][m][0] - 1:+.1%}"
            for m in FIG22_METRICS
        ]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def order_label(order: Sequence[str]) -> str:
    """multi-modal, multi-exposure, ... -> modal→exposure→focus, as the paper writes orders."""
    return "→".join(task.removeprefix("multi-") for task in order)


def table5(runs: Sequence[Run], summaries: dict[str, dict]) -> str:
    """Markdown: CC / MG per test set, the paper's row of each training order above ours."""
    header = ["training order", "source", *(f"{d} ({s})" for d, s in TABLE5_SETS.items())]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for run in runs:
        paper = PAPER_TABLE_5.get(tuple(run.task_order))
        label = order_label(run.task_order)
        if paper is not None:
            cells = [f"{cc:.4f} / {mg:.4f}" for cc, mg in paper.values()]
            lines.append("| " + " | ".join([label, "paper, Table 5", *cells]) + " |")
        ours = []
        for set_name in TABLE5_SETS.values():
            scores = summaries.get(set_name, {}).get(run.variant)
            ours.append(
                MISSING if scores is None else f"{scores['CC'][0]:.4f} / {scores['AG'][0]:.4f}"
            )
        lines.append("| " + " | ".join([label, f"`{run.variant}`", *ours]) + " |")
    return "\n".join(lines)


# --- the report --------------------------------------------------------------------------------

SETTINGS_LEFT_OUT = ("run_dir",)
"""Config entries that differ between runs without changing what is trained."""


def runs_section(runs: dict[str, Run]) -> list[str]:
    """Every variant's state, commit and command, then the settings: those common to all runs
    in one line, those that differ in a table."""
    lines = [
        "## Runs",
        "",
        "| variant | tasks done | code commit | command |",
        "| --- | --- | --- | --- |",
    ]
    for variant in VARIANTS:
        run = runs.get(variant)
        if run is None:
            lines.append(f"| `{variant}` | not trained | | |")
            continue
        command = " ".join(str(part) for part in run.provenance.get("command", [])) or "?"
        lines.append(
            f"| `{variant}` | {run.tasks_done} of {len(run.task_order)} | `{run.commit}` | "
            f"`{command}` |"
        )
    for variant, parent in SHARES_FIRST_TASK.items():
        lines += ["", f"`{variant}` starts from `{parent}`'s run folder as it stood after task 1."]
    if not runs:
        return lines
    keys = [k for k in dict.fromkeys(k for r in runs.values() for k in r.config)]
    keys = [k for k in keys if k not in SETTINGS_LEFT_OUT]
    values = {k: [_setting(r.config.get(k)) for r in runs.values()] for k in keys}
    common = [k for k in keys if len(set(values[k])) == 1]
    differing = [k for k in keys if len(set(values[k])) > 1]
    lines += [
        "",
        "Settings (`config.json`) common to every run: "
        + ", ".join(f"`{k}={values[k][0]}`" for k in common)
        + ".",
    ]
    if differing:
        lines += [
            "",
            "| setting | " + " | ".join(f"`{v}`" for v in runs) + " |",
            "|" + " --- |" * (len(runs) + 1),
            *(f"| `{k}` | " + " | ".join(f"`{x}`" for x in values[k]) + " |" for k in differing),
        ]
    return [*lines, ""]


def _setting(value) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def missing_note(runs: dict[str, Run], variants: Sequence[str], finished: bool) -> str | None:
    """A sentence naming the variants a section needs that are not there (yet)."""
    absent = [v for v in variants if v not in runs]
    unfinished = [v for v in variants if v in runs and finished and not runs[v].finished]
    parts = []
    if absent:
        parts.append(f"not trained: {', '.join(f'`{v}`' for v in absent)}")
    if unfinished:
        parts.append(f"not finished: {', '.join(f'`{v}`' for v in unfinished)}")
    return f"Left out ({'; '.join(parts)})." if parts else None


def claim(key: str, where: str) -> list[str]:
    return [f"> The paper ({where}): “{CLAIMS[key]}”", ""]


def write_report(
    runs_dir: Path,
    report: Path,
    figures: Path,
    data_root: Path,
    out_dir: Path,
    max_pairs: int = 0,
    log: Callable[[str], None] = print,
) -> Path:
    """Reads the runs, scores the finished models, draws the figures and writes the report."""
    runs = read_runs(runs_dir)
    plt = pyplot()
    images: dict[str, bytes] = {}
    skipped_figures: list[str] = []
    link = Path(os.path.relpath(figures, report.parent))
    lines = [
        "# The paper's ablations reproduced by this code",
        "",
        "Written by `make ablations` (`python -m u2fusion_tf.ablation_report`) from the run "
        f"folders of `{runs_dir}`. Each variant is trained with the same schedule and seed; only "
        "what its ablation changes differs (see [Runs](#runs)).",
        "",
        *runs_section(runs),
    ]

    lines += ["## Fig. 18: EWC keeps the earlier tasks", "", *claim("fig18", "Sec. 5.1")]
    ewc_runs = [runs[v] for v in EWC_RUNS if v in runs]
    events = {run.variant: read_events(run.folder) for run in ewc_runs}
    if ewc_runs:
        lines += _table_lines(
            "Held-out similarity loss L_sim (Eq. 6) of each task learnt so far, on its held-out "
            "patches, at the end of every task (lower is better); the last column is its change "
            "from the end of its own task to the end of the last task the run has finished.",
            forgetting_table(ewc_runs, events),
            ewc_runs,
        )
        if plt is not None:
            images["fig18-similarity-loss.png"] = plot_similarity_loss(plt, ewc_runs, events)
    lines += _figure_lines("fig18-similarity-loss.png", "Fig. 18", link, images, skipped_figures)
    lines += _note(missing_note(runs, EWC_RUNS, finished=False))

    lines += ["## Fig. 19: the importance of the weights", "", *claim("fig19", "Sec. 5.1")]
    mus = {run.variant: mu_after_each_task(run) for run in ewc_runs}
    mu_runs = [run for run in ewc_runs if mus[run.variant]]
    if mu_runs:
        lines += _table_lines(
            "mu (Eq. 9: the mean of the Fisher diagonals of the tasks learnt so far, measured "
            "after each task, with and without EWC) over all weights of the generator.",
            mu_table(mu_runs, mus),
            mu_runs,
        )
        if plt is not None:
            images["fig19-importance.png"] = plot_mu_histograms(plt, mu_runs, mus)
    lines += _figure_lines("fig19-importance.png", "Fig. 19", link, images, skipped_figures)
    lines += _note(missing_note(runs, EWC_RUNS, finished=False))

    finished = {v: run for v, run in runs.items() if run.finished}
    fig22, order_scores, examples, skipped = score_variants(
        finished, data_root, out_dir, max_pairs, log
    )
    lines += ["## Fig. 22: adaptive information preservation degrees", ""]
    lines += claim("fig22", "Sec. 5.3")
    degree_runs = [finished[v] for v in DEGREE_RUNS if v in finished]
    if fig22:
        lines += [
            "Standard convention (images on the 0-255 scale), mean ± std over each set's test "
            f"pairs{_first(max_pairs)}, fused images scored as 8-bit PNG.",
            "",
        ]
        for name, summary in fig22.items():
            lines += [f"### {name}", "", format_table(summary, FIG22_METRICS, markdown=True), ""]
        if all(v in finished for v in DEGREE_RUNS):
            lines += [
                "### fixed-degrees relative to baseline",
                "",
                "fixed-degrees / baseline - 1.",
                "",
                degrees_change_table(fig22),
                "",
            ]
        lines += [runs_line(degree_runs), ""]
        from u2fusion_tf.results import make_figure

        columns = ("source A", "source B", *(run.variant for run in degree_runs))
        figures.mkdir(parents=True, exist_ok=True)
        make_figure(examples, figures / "fig22-adaptive-degrees.jpg", columns)
        lines += [
            f"![Fig. 22: the first test pair of each set, fused by {' and '.join(columns[2:])}]"
            f"({(link / 'fig22-adaptive-degrees.jpg').as_posix()})",
            "",
        ]
    lines += _note(missing_note(runs, DEGREE_RUNS, finished=True))

    lines += ["## Table 5: the training order", "", *claim("table5", "Sec. 5.4")]
    order_runs = [finished[v] for v in ORDER_RUNS if v in finished]
    if order_scores:
        lines += _table_lines(
            "CC / MG per test set: the paper's Table 5, then this code's models on our copies "
            f"of the paper's test pairs (`u2fusion_test`{_first(max_pairs)}, fewer pairs than "
            "the paper scored). "
            "Paper convention (images in [0, 1]); MG is the average gradient AG.",
            table5(order_runs, order_scores),
            order_runs,
        )
    lines += _note(missing_note(runs, ORDER_RUNS, finished=True))
    if skipped:
        lines += ["## Skipped pairs", "", *(f"- {line}" for line in skipped), ""]

    if images:
        figures.mkdir(parents=True, exist_ok=True)
    for name, payload in images.items():
        write_atomically(figures / name, payload)
    report.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(report, "\n".join(lines).encode())
    if skipped_figures:
        log(f"figures skipped (matplotlib is not installed): {', '.join(skipped_figures)}")
    log(f"wrote {report}")
    return report


def _figure_lines(
    name: str, title: str, link: Path, images: dict[str, bytes], skipped: list[str]
) -> list[str]:
    if name in images:
        return [f"![{title}]({(link / name).as_posix()})", ""]
    skipped.append(name)
    return [
        f'({title} was not drawn: matplotlib is not installed; `pip install -e ".[plots]"`.)',
        "",
    ]


def _first(max_pairs: int) -> str:
    """How a set's pairs were limited (``--max_pairs``), for the report's text."""
    return f" (only the first {max_pairs} of each set)" if max_pairs else ""


def _note(text: str | None) -> list[str]:
    return [text, ""] if text else []


def main(argv: list[str]) -> None:
    from absl import flags

    f = flags.FLAGS
    del argv
    write_report(
        Path(f.runs_dir),
        Path(f.report),
        Path(f.figures),
        resolve_data_root(f.data_root),
        Path(f.out_dir),
        f.max_pairs,
        cli.log,
    )


def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_string("runs_dir", "runs/ablations", "Folder with one run folder per variant.")
    flags.DEFINE_string("report", "checkpoints/ablations.md", "The Markdown report to write.")
    flags.DEFINE_string("figures", "checkpoints/ablations", "Folder for the report's figures.")
    flags.DEFINE_string("data_root", None, DATA_ROOT_HELP)
    flags.DEFINE_string("out_dir", "results/ablations", "Where the fused test images go.")
    flags.DEFINE_integer("max_pairs", 0, "Use only the first N pairs of each set (0: all).")


if __name__ == "__main__":
    _define_flags()
    cli.run_main(main, on_interrupt="the report was not written; run it again")
