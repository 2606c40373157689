"""The README and docs/ link where they say: every relative link reaches a file of the checkout, and every
``#anchor`` a heading of its page (GitHub's rule: lower case, punctuation but '-' dropped, spaces to '-', a
repeated heading numbered)."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes for the headings of ``page`` (code blocks left out)."""
    out: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in page.read_text().splitlines():
        in_code ^= line.startswith("```")
        heading = None if in_code else re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            out.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return out


def broken_links(page: Path) -> list[str]:
    """``target (why)`` for each relative link of ``page`` that reaches no file or no heading."""
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = page.parent / path if path else page
        if not dest.exists():
            bad.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target} (no heading of {dest.name} makes that anchor)")
    return bad


def test_every_relative_link_of_the_readme_and_docs_resolves():
    assert {page.name: broken_links(page) for page in PAGES if broken_links(page)} == {}


def test_the_link_check_sees_a_missing_file_and_a_missing_heading(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Two words\n## Two words\n```\n# not a heading\n```\n[a](#two-words-1) [b](#not-a-heading) "
                    "[c](gone.md) [d](https://example.org/x)\n")
    assert anchors(page) == {"two-words", "two-words-1"}
    assert broken_links(page) == ["#not-a-heading (no heading of page.md makes that anchor)", "gone.md (no such file)"]
