"""The user documentation's links: every relative Markdown link in README.md and docs/*.md
names a file or folder that exists in the checkout."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^\s*(```|~~~).*?^\s*\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)[^)]*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.MULTILINE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def documents() -> list[Path]:
    return [REPOSITORY_ROOT / "README.md", *sorted((REPOSITORY_ROOT / "docs").glob("*.md"))]


def link_targets(text: str) -> list[str]:
    """The targets of a Markdown text's inline links, images and reference definitions,
    outside code blocks and code spans."""
    prose = CODE_SPAN.sub("", FENCE.sub("", text))
    found = INLINE_LINK.findall(prose) + REFERENCE_DEFINITION.findall(prose)
    return [target.strip("<>") for target in found]


def broken_links(document: Path) -> list[str]:
    """The relative links of `document` whose file does not exist (web addresses and links
    to an anchor of the document itself are not checked; a #fragment is dropped)."""
    broken = []
    for target in link_targets(document.read_text(encoding="utf-8")):
        if SCHEME.match(target) or target.startswith("#"):
            continue
        path = unquote(target.split("#", 1)[0].split("?", 1)[0])
        if not (document.parent / path).exists():
            broken.append(f"{document.relative_to(REPOSITORY_ROOT)}: {target}")
    return broken


def test_every_relative_link_names_an_existing_file():
    broken = [link for document in documents() for link in broken_links(document)]
    assert not broken, "links to missing files:\n" + "\n".join(broken)
