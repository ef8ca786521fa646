"""The README and docs/ point only to files the repository has, and claim nothing is missing
that is built (issue 15: links to ``shared/`` files outside the repository, "not built yet"
about parts that were built)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) and ![alt](target); the target up to a space or the closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")
# A path in code spans: `shared/DESIGN.md`, `docs/api.md`, `src/vigil/core/`.
CODE_PATH = re.compile(r"`((?:shared|docs|src|tests|scripts|examples|benchmarks)/[\w./-]*)`")
NOT_BUILT = re.compile(r"not (yet )?built( yet)?|not implemented|coming soon", re.IGNORECASE)


def local_targets(text: str) -> list[str]:
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (http:, mailto:, ...) or a heading of the same page
        targets.append(target.split("#", 1)[0])
    return targets + CODE_PATH.findall(text)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_local_link_points_to_a_file_in_the_repository(document: Path) -> None:
    missing = [
        target
        for target in local_targets(document.read_text(encoding="utf-8"))
        if not (document.parent / target).resolve().exists() and not (ROOT / target).exists()
    ]
    assert missing == [], f"{document.relative_to(ROOT)} links to files it does not have"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_no_document_says_a_part_is_not_built(document: Path) -> None:
    lines = document.read_text(encoding="utf-8").splitlines()
    claims = [line for line in lines if NOT_BUILT.search(line) and "described built" not in line]
    assert claims == [], f"{document.relative_to(ROOT)}: {claims}"


def test_the_link_reader_sees_relative_links_and_skips_urls() -> None:
    text = "[a](docs/api.md#top) ![b](docs/screenshots/x.png) [c](https://x.org) [d](#here)"
    text += " see `shared/DESIGN.md`, and `vigil serve`"
    assert local_targets(text) == ["docs/api.md", "docs/screenshots/x.png", "shared/DESIGN.md"]
