"""`make paper`: the paper's Tables 1-4 typed correctly, and one pair end to end."""

from __future__ import annotations

import numpy as np
import pytest

from u2fusion_tf import paper
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.images import read_image
from u2fusion_tf.metrics import compute_metrics


def test_typed_numbers_are_the_papers_tables(paper_text):
    assert paper.check_published(paper_text) == []
    table_1 = paper.parse_table(paper_text, 1)
    assert len(table_1) == 7 and set(table_1["U2Fusion"]) == {"TNO", "RoadScene"}
    assert set(paper.parse_table(paper_text, 3)["U2Fusion"]) == {"dataset in [41]", "EMPA HDR"}
    assert paper.parse_table(paper_text, 4)["U2Fusion"]["Lytro"]["MG"] == (34.767, 12.67)
    assert {p.table for p in paper.PUBLISHED} == set(paper.TABLES)
    altered = paper_text.replace("0.972±0.01", "0.973±0.01")
    assert len(paper.check_published(altered)) == 1, "a changed number is caught"
    with pytest.raises(U2FusionError, match="TABLE 9"):
        paper.parse_table(paper_text, 9)


def test_within_std_says_how_far():
    assert paper.within_std(0.6, (0.537, 0.11)) == "yes (+0.57 std)"
    assert paper.within_std(0.3, (0.537, 0.11)) == "no (-2.15 std)"
    assert paper.within_std(1.0, (1.1, 0.1)).startswith("yes")


def test_table_2_on_one_pair(official_env, shared_data, paper_text, tmp_path):
    """One Harvard pair: the report's cells are the paper's numbers and the paper-convention
    scores of the fused files, the authors' scaling stretches their image to full range."""
    path = paper.run(
        str(shared_data),
        "official",
        tmp_path / "out",
        tmp_path / "report",
        max_pairs=1,
        log=lambda line: None,
        tables=(2,),
    )
    report = path.read_text()
    assert "| 2 | Harvard (10) | `u2fusion_test/medical`, 1 pair |" in report
    section = report.split("## Table 2, Harvard: `u2fusion_test/medical`, 1 pair\n", 1)[1]
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in section.splitlines()[3:7]}
    assert list(rows) == ["SCD", "CC", "SSIM", "PSNR"]
    assert rows["SCD"][1] == "1.312 ± 0.04"
    fused = tmp_path / "out" / "fused" / "u2fusion_test-medical"
    sources = [
        read_image(shared_data / "u2fusion_test" / "medical" / d / "1.png") for d in ("pet", "mri")
    ]
    for column, folder in enumerate(paper.COLUMNS, 2):
        scores = compute_metrics(
            *sources, read_image(fused / folder / "1.png"), list(rows), "paper"
        )
        for metric, cells in rows.items():
            assert cells[column] == f"{scores[metric]:.5g} ± 0", (folder, metric)
    verdict = rows["CC"][-1].rstrip(" |")
    assert verdict.count("std)") == 2 and verdict.startswith(("yes (", "no ("))
    saved, output = (
        read_image(fused / f / "1.png") for f in ("official_authors_scaling", "official")
    )
    assert saved.max() == 1.0 and output.max() < 0.95
    np.testing.assert_allclose(saved, output / output.max(), atol=2 / 255)
