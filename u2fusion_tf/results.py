"""The shipped model against the authors' and classic methods on every test set: ``make results``.

For the test split of every dataset and the paper's own test pairs (``u2fusion_test``; the
catalogue is `u2fusion_tf.catalogue`), fuses each pair with every method, scores the results with
`u2fusion_tf.metrics` and writes:

- ``<report_dir>/results.md``: one table per dataset (standard convention, mean ± std), the
  quality bar (the shipped model's SSIM, Qabf and VIF relative to the authors' model) and a
  pointer to the paper's tables (`u2fusion_tf.paper`);
- ``<report_dir>/figure.jpg``: the sources and three fusions of the first test pair of every
  dataset;
- ``<out_dir>/scores.csv`` (per-image scores) and ``<out_dir>/fused/<set>/<method>/`` (the
  fused images, 8-bit PNG, which is what is scored).

Methods: ``u2fusion`` (``--weights``, default the shipped checkpoint), ``official`` (the
authors' checkpoint), ``average`` and ``laplacian_pyramid`` (`u2fusion_tf.baselines`), and for
multi-exposure sets ``mertens``; ``--output_scaling`` sets how the networks' images are
written. Every run fuses everything again, so the tables always match
the weights given::

    python -m u2fusion_tf.results --report_dir reports
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from absl import flags

from u2fusion_tf import baselines, cli
from u2fusion_tf.catalogue import evaluation_sets, resolve_data_root
from u2fusion_tf.files import write_atomically
from u2fusion_tf.fusion import fuse_ycbcr_with
from u2fusion_tf.metrics import METRIC_NAMES
from u2fusion_tf.scoring import (
    Fusion,
    describe_weights,
    fuse_set,
    network_fusion,
    score_set,
    summarize,
)
from u2fusion_tf.tables import format_table, make_figure, write_csv
from u2fusion_tf.weights import OFFICIAL, default_weights, load_model

if TYPE_CHECKING:
    from u2fusion_tf.model import U2FusionNet

logger = logging.getLogger(__name__)


FLAGS = flags.FLAGS

QUALITY_BAR_METRICS = ("SSIM", "Qabf", "VIF")
QUALITY_BAR_TOLERANCE = 0.05
"""The shipped model should be within 5% of the authors' model on these metrics, or better."""
FIGURE_COLUMNS = ("source A", "source B", "u2fusion", "official", "laplacian_pyramid")


def methods(
    networks: dict[str, U2FusionNet], task: str, scaling: str = "none"
) -> dict[str, Fusion]:
    """The methods compared on a set of the given task, by the folder name of their results;
    the networks' images with the output `scaling`."""
    found = {name: network_fusion(model, scaling) for name, model in networks.items()}
    for name, luminance_fusion in (
        ("average", baselines.average),
        ("laplacian_pyramid", baselines.laplacian_pyramid),
    ):
        found[name] = lambda images, f=luminance_fusion: fuse_ycbcr_with(images, f).to_image()
    if task == "multi-exposure":
        found["mertens"] = baselines.mertens
    return found


def quality_bar(summaries: dict[str, dict]) -> tuple[str, list[str]]:
    """A Markdown table of u2fusion / official - 1 per dataset and metric; and the misses."""
    header = ["dataset", *QUALITY_BAR_METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    misses = []
    for table, summary in summaries.items():
        cells = []
        for metric in QUALITY_BAR_METRICS:
            ours, theirs = summary["u2fusion"][metric][0], summary["official"][metric][0]
            relative = ours / theirs - 1
            cells.append(f"{relative:+.1%}")
            if relative < -QUALITY_BAR_TOLERANCE:
                misses.append(f"{table} {metric} {relative:+.1%}")
        lines.append("| " + " | ".join([table, *cells]) + " |")
    return "\n".join(lines), misses


@dataclass
class Report:
    """What `collect` measured, per table (a dataset, or a group of the paper's test pairs)."""

    model: str
    """What the ``u2fusion`` column is (`describe_weights`)."""
    scores: dict[str, list[dict]] = field(default_factory=dict)
    """Per-image rows of every method, standard convention."""
    scaling: str = "none"
    """The output scaling of the networks' images (`OUTPUT_SCALINGS`)."""
    examples: dict[str, tuple[str, dict[str, Path]]] = field(default_factory=dict)
    """The first pair of each dataset: its label and its images by `FIGURE_COLUMNS` name."""
    skipped: list[str] = field(default_factory=list)

    def summaries(self) -> dict[str, dict]:
        return {table: summarize(rows, METRIC_NAMES) for table, rows in self.scores.items()}


def collect(
    data_root: str,
    weights: str,
    out_dir: Path,
    max_pairs: int = 0,
    log: Callable[[str], None] = logger.info,
    scaling: str = "none",
) -> Report:
    """Fuses every test set with every method into `out_dir` and scores the results."""
    sets = evaluation_sets(data_root)
    networks = {"u2fusion": load_model(weights), "official": load_model(OFFICIAL)}
    report = Report(describe_weights(weights), scaling=scaling)
    for evaluation_set in sets:
        fusions = methods(networks, evaluation_set.task, scaling)
        folders, failures = fuse_set(evaluation_set, fusions, out_dir, max_pairs, log)
        rows, skipped = score_set(evaluation_set, folders, "standard", log=log)
        report.scores.setdefault(evaluation_set.table, []).extend(rows)
        report.skipped += failures + skipped
        if not evaluation_set.table.startswith("u2fusion_test"):
            stem, path_a, path_b = evaluation_set.pairs()[0]
            fused = {folder.name: folder / f"{stem}.png" for folder in folders}
            report.examples[evaluation_set.table] = (
                f"{evaluation_set.name}/{stem}",
                {"source A": path_a, "source B": path_b, **fused},
            )
    return report


def render(report: Report) -> str:
    """``results.md``: the tables, the quality bar and where the paper's tables are."""
    summaries = report.summaries()
    lines = [
        "# Results on the test sets",
        "",
        "Written by `make results` (`python -m u2fusion_tf.results`). Standard convention "
        "(images on the 0-255 scale; see the README for both conventions); mean ± std over the "
        "test pairs; fused images scored as 8-bit PNG, the networks' with output scaling "
        f"`{report.scaling}`. `u2fusion` is {report.model}.",
        "",
    ]
    for table, summary in summaries.items():
        lines += [f"## {table}", "", format_table(summary, METRIC_NAMES, markdown=True), ""]
    lines += [
        "## Quality bar: u2fusion relative to the authors' model",
        "",
        f"u2fusion / official - 1 (the bar: no worse than -{QUALITY_BAR_TOLERANCE:.0%}).",
        "",
        quality_bar(summaries)[0],
        "",
        "The paper's Tables 1-4 beside the authors' and the shipped model, in the paper's "
        "convention: `make paper` (`paper.md`).",
        "",
    ]
    if report.skipped:
        lines += ["## Skipped", "", *(f"- {line}" for line in report.skipped), ""]
    return "\n".join(lines)


def run(
    data_root: str | Path,
    weights: str,
    out_dir: Path,
    report_dir: Path,
    max_pairs: int = 0,
    log: Callable[[str], None] = logger.info,
    scaling: str = "none",
) -> Report:
    """Fuses, scores and reports every test set; returns what it measured."""
    report = collect(data_root, weights, out_dir, max_pairs, log, scaling)
    report_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(report_dir / "results.md", render(report).encode())
    rows = [row for rows in report.scores.values() for row in rows]
    write_csv(str(out_dir / "scores.csv"), rows, METRIC_NAMES)
    make_figure(list(report.examples.values()), report_dir / "figure.jpg", FIGURE_COLUMNS)
    log(f"wrote {report_dir / 'results.md'}, {report_dir / 'figure.jpg'}, {out_dir / 'scores.csv'}")
    return report


def main(argv: list[str]) -> None:
    del argv
    report = run(
        resolve_data_root(FLAGS.data_root),
        FLAGS.weights or default_weights(),
        Path(FLAGS.out_dir),
        Path(FLAGS.report_dir),
        FLAGS.max_pairs,
        cli.log,
        FLAGS.output_scaling,
    )
    for miss in quality_bar(report.summaries())[1]:
        print(f"below the quality bar: {miss}")


if __name__ == "__main__":
    from u2fusion_tf import common_flags

    common_flags.define_data_root()
    common_flags.define_weights()
    flags.DEFINE_string("out_dir", "results", "Where fused images and per-image scores go.")
    flags.DEFINE_string("report_dir", "reports", "Where results.md and figure.jpg go.")
    common_flags.define_max_pairs()
    common_flags.define_output_scaling()
    cli.run_main(
        main,
        on_interrupt="files already written are complete; run it again to finish",
    )
