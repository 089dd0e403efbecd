"""docs/results.md quotes numbers from the generated reports; each quoted number (in `code`)
must be in a report its paragraph links, so a rerun that changes a number shows here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "results.md"
QUOTED = re.compile(r"`([-+]?\d[\d.]*(?:e[-+]?\d+)?%?)`")
REPORT_LINK = re.compile(r"\]\((\.\./reports/[^)#]+\.md)\)")


def paragraphs(text: str) -> list[str]:
    """Paragraphs and list items, each a unit that quotes and links together."""
    return [part for block in text.split("\n\n") for part in re.split(r"\n(?=- )", block)]


def test_every_quoted_number_is_in_a_report_its_paragraph_links():
    quoted = 0
    for paragraph in paragraphs(DOC.read_text(encoding="utf-8")):
        numbers = QUOTED.findall(paragraph)
        if not numbers:
            continue
        reports = [(DOC.parent / link).resolve() for link in REPORT_LINK.findall(paragraph)]
        assert reports, f"quotes {numbers} without linking a report: {paragraph[:80]}..."
        texts = [report.read_text(encoding="utf-8") for report in reports]
        for number in numbers:
            assert any(number in text for text in texts), (number, [r.name for r in reports])
            quoted += 1
    assert quoted >= 10, "the document quotes the reports' numbers"
