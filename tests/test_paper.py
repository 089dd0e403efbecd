"""`make paper`: one pair end to end, its scores and verdicts read from the data it returns."""

from __future__ import annotations

import numpy as np

from u2fusion_tf import paper
from u2fusion_tf.images import read_image
from u2fusion_tf.metrics import compute_metrics
from u2fusion_tf.published import METRIC_OF
from u2fusion_tf.verdicts import compare_with_paper


def test_table_2_on_one_pair(official_env, shared_data, paper_text, tmp_path):
    """One Harvard pair: the scores are the paper-convention scores of the fused files, the
    verdicts follow from them by the one rule, the report shows both, and the authors' scaling
    stretches their image to full range."""
    (comparison,) = paper.run(
        str(shared_data),
        "official",
        tmp_path / "out",
        tmp_path / "report",
        max_pairs=1,
        log=lambda line: None,
        tables=(2,),
    )
    assert comparison.published.dataset == "Harvard"
    assert comparison.where == "`u2fusion_test/medical`, 1 pair"
    assert list(comparison.published.scores) == ["SCD", "CC", "SSIM", "PSNR"]
    fused = tmp_path / "out" / "fused" / "u2fusion_test-medical"
    sources = [
        read_image(shared_data / "u2fusion_test" / "medical" / d / "1.png") for d in ("pet", "mri")
    ]
    metrics = [METRIC_OF[m][0] for m in comparison.published.scores]
    for column in paper.COLUMNS:
        scores = compute_metrics(*sources, read_image(fused / column / "1.png"), metrics, "paper")
        for metric in metrics:
            assert comparison.summary[column][metric] == (scores[metric], 0.0, 1)
    verdicts = comparison.verdicts("official")
    for paper_metric, (mean, sd) in comparison.published.scores.items():
        ours = comparison.summary["official"][METRIC_OF[paper_metric][0]]
        assert verdicts[paper_metric] == compare_with_paper(ours, (mean, sd, 10))
    report = (tmp_path / "report" / "paper.md").read_text()
    assert "| SCD | 1.312 ± 0.04 | " in report and str(verdicts["SCD"]) in report
    saved, output = (
        read_image(fused / f / "1.png") for f in ("official_authors_scaling", "official")
    )
    assert saved.max() == 1.0 and output.max() < 0.95
    np.testing.assert_allclose(saved, output / output.max(), atol=2 / 255)
