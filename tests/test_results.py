"""`make results`: every test set fused by every method, scored, and reported."""

from __future__ import annotations

import csv

import cv2

from u2fusion_tf import results, scoring, tables
from u2fusion_tf.catalogue import evaluation_sets
from u2fusion_tf.metrics import METRIC_NAMES


def test_quality_bar_reports_a_model_more_than_five_percent_behind():
    def summary(ssim: float) -> dict:
        return {metric: (1.0, 0.0, 3) for metric in METRIC_NAMES} | {"SSIM": (ssim, 0.0, 3)}

    table, misses = results.quality_bar(
        {
            "close": {"u2fusion": summary(0.96), "official": summary(1.0)},
            "behind": {"u2fusion": summary(0.90), "official": summary(1.0)},
        }
    )
    assert misses == ["behind SSIM -10.0%"]
    assert "| close | -4.0% | +0.0% | +0.0% |" in table


def test_a_report_names_the_weights_it_scored(random_weights_file, tmp_path):
    """A report of other weights must not pass for the shipped model's: named, with a digest."""
    from u2fusion_tf.files import sha256_of
    from u2fusion_tf.weights import SHIPPED_WEIGHTS

    other = scoring.describe_weights(str(random_weights_file))
    assert other == f"the model `random.weights.h5` (SHA-256 {sha256_of(random_weights_file)[:12]})"
    shipped_copy = tmp_path / SHIPPED_WEIGHTS.name
    shipped_copy.write_bytes(SHIPPED_WEIGHTS.read_bytes())
    assert scoring.describe_weights(str(shipped_copy)).startswith("the model `u2fusion.weights.h5`")
    assert scoring.describe_weights(str(SHIPPED_WEIGHTS)).startswith("the shipped model ")
    assert scoring.describe_weights("official") == "the authors' checkpoint"


def test_results_of_the_authors_model_against_itself(official_env, shared_data, tmp_path):
    """One pair per set: every table, method and figure row is there, and a model compared with
    itself sits exactly on the quality bar."""
    sets = evaluation_sets(shared_data)
    report = results.run(
        str(shared_data),
        "official",
        tmp_path / "out",
        tmp_path / "report",
        max_pairs=1,
        log=lambda line: None,
    )
    summaries = report.summaries()
    assert list(summaries) == list(dict.fromkeys(s.table for s in sets)) and len(summaries) == 8
    assert report.model == "the authors' checkpoint"
    assert results.quality_bar(summaries)[1] == []
    for table, summary in summaries.items():
        expected = {"u2fusion", "official", "average", "laplacian_pyramid"}
        if "exposure" in table or table == "mefb":
            expected.add("mertens")
        assert set(summary) == expected, table
        for metric in results.QUALITY_BAR_METRICS:
            assert summary["u2fusion"][metric] == summary["official"][metric]
    assert (
        "`u2fusion` is the authors' checkpoint." in (tmp_path / "report" / "results.md").read_text()
    )
    with open(tmp_path / "out" / "scores.csv") as stream:
        rows = list(csv.DictReader(stream))
    methods_per_set = [5 if s.task == "multi-exposure" else 4 for s in sets]
    assert len(rows) == sum(methods_per_set)
    figure = cv2.imread(str(tmp_path / "report" / "figure.jpg"))
    width, height = tables.FIGURE_TILE
    assert figure.shape == (26 + 4 * (26 + height), width * len(results.FIGURE_COLUMNS), 3)
