"""The paper's Tables 1-4 beside this project's measurements: ``make paper``.

For every test set of the paper's Tables 1-4, puts side by side: U2Fusion's published mean ± std
(`PUBLISHED`, typed from the paper), the authors' model on our copies of their test pairs with
and without their output scaling (`u2fusion_tf.images.OUTPUT_SCALINGS`), and the shipped model;
all scored in the paper's convention of `u2fusion_tf.metrics`. For the authors' model it states
whether each mean falls within the paper's standard deviation. Writes
``<report_dir>/paper.md``; the fused images (8-bit PNG, what is scored) go to
``<out_dir>/fused/<set>/<method>/``::

    python -m u2fusion_tf.paper --report_dir reports

When the paper's text is at hand (``--paper_text``), the typed numbers are first checked against
its tables (`parse_table`), and a difference stops the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from absl import flags

from u2fusion_tf import cli
from u2fusion_tf.catalogue import (
    SHARED,
    PairSet,
    evaluation_sets,
    resolve_data_root,
)
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.files import write_atomically
from u2fusion_tf.published import (
    METRIC_OF,
    PUBLISHED,
    TABLES,
    Published,
    check_published,
    check_table_5,
)
from u2fusion_tf.scoring import fuse_set, network_fusion, score_set, summarize
from u2fusion_tf.tables import markdown_table
from u2fusion_tf.verdicts import (
    CONSISTENT_Z,
    PaperComparison,
    compare_with_paper,
    within_paper_std,
)
from u2fusion_tf.weights import OFFICIAL, SHIPPED_NAME, default_weights, load_model

logger = logging.getLogger(__name__)


FLAGS = flags.FLAGS

COLUMNS = {
    "official_authors_scaling": "authors' model, saved as theirs",
    "official": "authors' model, network output",
    "u2fusion": "shipped model",
}
"""The fused-image folders scored, and how the report names them."""
REPORT_HEAD = [
    "# The paper's Tables 1-4 beside our measurements",
    "",
    "Written by `make paper` (`python -m u2fusion_tf.paper`). For each test set of the paper's "
    "Tables 1-4: U2Fusion's mean ± std as the paper prints it (n = the pairs the paper scored), "
    "then the authors' released model (`official`) on our copies of the test pairs, once saved "
    "as their test program saves it (`--output_scaling authors`: each image stretched by "
    "1 / its maximum before 8 bits) and once as the network outputs it (`--output_scaling "
    f"none`), and the shipped model (`{SHIPPED_NAME}`, network output). All "
    "scored as 8-bit PNG in the paper's convention of `u2fusion_tf.metrics` (images in [0, 1]; "
    "SSIM the sum over the two sources with L = 255 constants; PSNR with a 255 peak; MG is the "
    "average gradient AG, in the paper's unit of 1e-3 in Table 4).",
    "",
    "**The verdict** (`u2fusion_tf.verdicts.compare_with_paper`, the one rule every report "
    "uses): for the authors' model, the difference between our mean and the paper's in "
    "standard errors, z = (ours - paper) / sqrt(sd_paper² / n_paper + sd_ours² / n_ours) as in "
    f"Welch's test; **consistent** when |z| <= {CONSISTENT_Z:g}, else **differs**. A secondary "
    "column says whether our mean lies within the paper's mean ± sd, a lenient reading (the sd "
    "is the spread of single pairs, not of a mean), kept only for comparison.",
    "",
    "**The pairs differ.** The paper scored more pairs than its authors published: 20 TNO, 45 "
    "RoadScene, 10 Harvard, 30 + 15 multi-exposure (the dataset in [41] and EMPA HDR) and "
    "20 Lytro pairs. `u2fusion_test` holds the pairs of the authors' repository "
    "(`test_imgs/`): 10 TNO, 10 RoadScene, 4 Harvard, 5 + 3 multi-exposure (`dataset1`, "
    "`dataset2`) and 3 Lytro pairs; which of the paper's pairs they are is not stated. For "
    "Table 4 the 20 Lytro pairs themselves are here too (the `mfifb` test split, "
    "`lytro_01..20`, fused in the authors' order far, near, as every command fuses them), "
    "the paper's own set, where the choice of pairs cannot explain a difference.",
    "",
    f"## Summary: metrics where the authors' model is consistent with the paper (|z| <= "
    f"{CONSISTENT_Z:g})",
    "",
    "| table | paper's set (pairs) | our pairs | saved as theirs | network output |",
    "| --- | --- | --- | --- | --- |",
]
PAPER_TEXT = SHARED / "paper" / "U2Fusion_TPAMI.txt"
"""The paper's text, where a checkout has it at hand."""
VERDICT_COLUMNS = ("official_authors_scaling", "official")
"""The columns judged against the paper: the authors' model, saved both ways."""


def judge(published: Published, summary: dict, column: str) -> dict[str, PaperComparison]:
    """The verdict (`compare_with_paper`) on every metric of the paper's table for one column
    of our summary (method -> metric -> (mean, sd, n))."""
    verdicts = {}
    for paper_metric, (mean, sd) in published.scores.items():
        metric, factor = METRIC_OF[paper_metric]
        ours_mean, ours_sd, n = summary[column][metric]
        verdicts[paper_metric] = compare_with_paper(
            (ours_mean * factor, ours_sd * factor, n), (mean, sd, published.pairs)
        )
    return verdicts


def comparison_table(published: Published, summary: dict) -> str:
    """Markdown: one row per metric of the paper's table, the paper's and our columns, the
    verdict for the authors' model saved both ways, and the secondary within-sd reading."""
    counts = {column: max(n for _, _, n in summary[column].values()) for column in COLUMNS}
    header = [
        "metric",
        f"paper: U2Fusion (n={published.pairs})",
        *(f"{name} (n={counts[column]})" for column, name in COLUMNS.items()),
        "authors' model vs the paper: saved as theirs / network output",
        "(secondary) within the paper's mean ± sd: saved as theirs / network output",
    ]
    verdicts = {column: judge(published, summary, column) for column in VERDICT_COLUMNS}
    rows = []
    for paper_metric, (mean, sd) in published.scores.items():
        metric, factor = METRIC_OF[paper_metric]
        ours = {column: summary[column][metric] for column in COLUMNS}
        rows.append(
            [
                paper_metric,
                f"{mean:g} ± {sd:g}",
                *(f"{m * factor:.5g} ± {s * factor:.2g}" for m, s, _ in ours.values()),
                " / ".join(str(verdicts[column][paper_metric]) for column in VERDICT_COLUMNS),
                " / ".join(
                    within_paper_std(ours[column][0] * factor, (mean, sd))
                    for column in VERDICT_COLUMNS
                ),
            ]
        )
    return markdown_table(header, rows)


def verdict_counts(published: Published, summary: dict, column: str) -> str:
    """'k of n' metrics consistent with the paper for one column, naming the others."""
    verdicts = judge(published, summary, column)
    differing = [metric for metric, verdict in verdicts.items() if not verdict.consistent]
    text = f"{len(verdicts) - len(differing)} of {len(verdicts)}"
    return text + (f" (not {', '.join(differing)})" if differing else "")


def find_sets(data_root: str | Path) -> dict[str, PairSet]:
    """Our sets named in `PUBLISHED` by name (sources in the authors' order, as the catalogue
    lists them); an error names any set that is missing."""
    sets = {s.name: s for s in evaluation_sets(data_root)}
    missing = [name for p in PUBLISHED for name in p.compared_with if name not in sets]
    if missing:
        raise U2FusionError(f"{data_root}: test sets not found: {', '.join(missing)}")
    return sets


@dataclass(frozen=True)
class Comparison:
    """One of our test sets scored against one row of the paper's tables."""

    published: Published
    set_name: str
    where: str
    """Where the pairs come from and how many were scored, for the report."""
    summary: dict
    """Column (`COLUMNS`) -> metric -> (mean, sd, n), paper convention."""

    def verdicts(self, column: str) -> dict[str, PaperComparison]:
        return judge(self.published, self.summary, column)


def collect(
    data_root: str | Path,
    weights: str,
    out_dir: Path,
    max_pairs: int = 0,
    log: Callable[[str], None] = logger.info,
    tables: Sequence[int] = TABLES,
) -> tuple[list[Comparison], list[str]]:
    """Fuses and scores every set of the paper's `tables`; returns the comparisons and what
    was skipped."""
    sets = find_sets(data_root)
    official, shipped = load_model(OFFICIAL), load_model(weights)
    fusions = {
        "official_authors_scaling": network_fusion(official, "authors"),
        "official": network_fusion(official),
        "u2fusion": network_fusion(shipped),
    }
    comparisons, skipped_all = [], []
    for published in (p for p in PUBLISHED if p.table in tables):
        metrics = [METRIC_OF[metric][0] for metric in published.scores]
        for name in published.compared_with:
            evaluation_set = sets[name]
            folders, failures = fuse_set(evaluation_set, fusions, out_dir, max_pairs, log)
            rows, skipped = score_set(evaluation_set, folders, "paper", metrics, log)
            skipped_all += failures + skipped
            pairs = sum(row["method"] == "official" for row in rows)
            where = f"{_describe(evaluation_set, data_root)}, {pairs} pair{'s' * (pairs != 1)}"
            comparisons.append(Comparison(published, name, where, summarize(rows, metrics)))
    return comparisons, skipped_all


def render(comparisons: Sequence[Comparison], skipped: Sequence[str]) -> str:
    """``paper.md``: the summary of verdicts, then one section per comparison."""
    summary_rows, sections = [], []
    for item in comparisons:
        published = item.published
        sections += [
            f"## Table {published.table}, {published.dataset}: {item.where}",
            "",
            comparison_table(published, item.summary),
            "",
        ]
        summary_rows.append(
            f"| {published.table} | {published.dataset} ({published.pairs}) | {item.where} | "
            f"{verdict_counts(published, item.summary, 'official_authors_scaling')} | "
            f"{verdict_counts(published, item.summary, 'official')} |"
        )
    report = [*REPORT_HEAD, *summary_rows, "", *sections]
    if skipped:
        report += ["## Skipped", "", *(f"- {line}" for line in skipped), ""]
    return "\n".join(report)


def check_paper_text(paper_text: Path) -> None:
    """Stops when the typed numbers (`u2fusion_tf.published`) differ from the paper's text."""
    text = paper_text.read_text(encoding="utf-8")
    differences = check_published(text) + check_table_5(text)
    if differences:
        raise U2FusionError(f"{paper_text}: " + "; ".join(differences))


def run(
    data_root: str | Path,
    weights: str,
    out_dir: Path,
    report_dir: Path,
    paper_text: Path | None = None,
    max_pairs: int = 0,
    log: Callable[[str], None] = logger.info,
    tables: Sequence[int] = TABLES,
) -> list[Comparison]:
    """Fuses, scores and writes ``paper.md`` for the paper's `tables`; returns what it shows."""
    if paper_text is not None and paper_text.is_file():
        check_paper_text(paper_text)
        log(f"the typed numbers match the tables of {paper_text}")
    comparisons, skipped = collect(data_root, weights, out_dir, max_pairs, log, tables)
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / "paper.md"
    write_atomically(path, render(comparisons, skipped).encode())
    log(f"wrote {path}")
    return comparisons


def _describe(evaluation_set: PairSet, data_root: str | Path) -> str:
    """Where a set's pairs come from, for the report."""
    if evaluation_set.stems is None:
        return f"`{evaluation_set.folder_a.parent.relative_to(data_root).as_posix()}`"
    return f"`{evaluation_set.name}` test split"


def main(argv: list[str]) -> None:
    del argv
    known = [str(table) for table in TABLES]
    if not FLAGS.tables or len(set(FLAGS.tables)) < len(FLAGS.tables):
        raise U2FusionError(f"--tables: give some of {','.join(known)}, once each")
    if not set(FLAGS.tables) <= set(known):
        raise U2FusionError(f"--tables {','.join(FLAGS.tables)}: give some of {','.join(known)}")
    run(
        resolve_data_root(FLAGS.data_root),
        FLAGS.weights or default_weights(),
        Path(FLAGS.out_dir),
        Path(FLAGS.report_dir),
        Path(FLAGS.paper_text) if FLAGS.paper_text else None,
        FLAGS.max_pairs,
        cli.log,
        [int(table) for table in FLAGS.tables],
    )


if __name__ == "__main__":
    from u2fusion_tf import common_flags

    common_flags.define_data_root()
    common_flags.define_weights()
    flags.DEFINE_string("out_dir", "results/paper", "Where the fused images go.")
    flags.DEFINE_string("report_dir", "reports", "Where paper.md goes.")
    flags.DEFINE_string(
        "paper_text",
        str(PAPER_TEXT),
        "The paper's text; when present, the typed numbers are checked against its tables.",
    )
    common_flags.define_max_pairs()
    flags.DEFINE_list("tables", [str(t) for t in TABLES], "The paper's tables to reproduce.")
    cli.run_main(
        main,
        on_interrupt="fused images already written are complete; run it again",
    )
