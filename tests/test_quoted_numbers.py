"""The docs quote numbers from the generated reports; each quoted number (in `code`) must be in
a report its paragraph links, so a rerun that changes a number shows here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QUOTING = {"results.md": 10, "speed.md": 10}
"""Each document that quotes reports, and how many numbers it quotes at least."""
QUOTED = re.compile(r"`([-+]?\d[\d.,]*(?:e[-+]?\d+)?[%x]?(?: ± \d[\d.]*(?:e[-+]?\d+)?)?)`")
"""A number in `code`, alone or as mean ± sd."""
REPORT_LINK = re.compile(r"\]\((\.\./reports/[^)#]+\.md)\)")


def paragraphs(text: str) -> list[str]:
    """Paragraphs and list items, each a unit that quotes and links together."""
    return [part for block in text.split("\n\n") for part in re.split(r"\n(?=- )", block)]


@pytest.mark.parametrize("name", sorted(QUOTING))
def test_every_quoted_number_is_in_a_report_its_paragraph_links(name):
    doc, quoted = ROOT / "docs" / name, 0
    for paragraph in paragraphs(doc.read_text(encoding="utf-8")):
        numbers = QUOTED.findall(paragraph)
        if not numbers:
            continue
        reports = [(doc.parent / link).resolve() for link in REPORT_LINK.findall(paragraph)]
        assert reports, f"quotes {numbers} without linking a report: {paragraph[:80]}..."
        texts = [report.read_text(encoding="utf-8") for report in reports]
        for number in numbers:
            assert any(number in text for text in texts), (number, [r.name for r in reports])
            quoted += 1
    assert quoted >= QUOTING[name], "the document quotes the reports' numbers"
