"""The paper's numbers as typed: Tables 1-5 checked against the paper's text."""

from __future__ import annotations

import pytest

from u2fusion_tf import published
from u2fusion_tf.errors import U2FusionError


def test_tables_1_to_4_are_the_papers(paper_text):
    assert published.check_published(paper_text) == []
    table_1 = published.parse_table(paper_text, 1)
    assert len(table_1) == 7 and set(table_1["U2Fusion"]) == {"TNO", "RoadScene"}
    assert set(published.parse_table(paper_text, 3)["U2Fusion"]) == {
        "dataset in [41]",
        "EMPA HDR",
    }
    assert published.parse_table(paper_text, 4)["U2Fusion"]["Lytro"]["MG"] == (34.767, 12.67)
    assert {p.table for p in published.PUBLISHED} == set(published.TABLES)
    altered = paper_text.replace("0.972±0.01", "0.973±0.01")
    assert len(published.check_published(altered)) == 1, "a changed number is caught"
    with pytest.raises(U2FusionError, match="TABLE 9"):
        published.parse_table(paper_text, 9)


def test_table_5_is_the_papers(paper_text):
    assert published.check_table_5(paper_text) == []
    printed = published.parse_table_5(paper_text)
    focus_first = ("multi-focus", "multi-modal", "multi-exposure")
    assert printed[focus_first]["Lytro"] == (0.9803, 0.0563)
    assert list(printed[focus_first]) == list(published.TABLE5_SETS)
    altered = paper_text.replace("0.9724/0.0700", "0.9724/0.0701")
    assert published.check_table_5(altered) == [
        "Table 5 multi-exposure→multi-modal→multi-focus: typed "
        f"{published.PAPER_TABLE_5[('multi-exposure', 'multi-modal', 'multi-focus')]}, printed "
        f"{published.parse_table_5(altered)[('multi-exposure', 'multi-modal', 'multi-focus')]}"
    ]
