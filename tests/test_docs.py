"""The front door holds: the README stays short, and every relative link and image in it
and in docs/ points at a committed file, as GitHub resolves it."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250
# [text](target) and ![alt](target), the target up to a space or ")"; <...> autolinks aside
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")


def _targets(page):
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold no links
    return LINK.findall(text)


def _committed():
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return {ROOT / line for line in out.splitlines()}


def test_the_readme_stays_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves_to_a_committed_file(page):
    committed = _committed()
    folders = {parent for path in committed for parent in path.parents}
    broken = []
    for target in _targets(page):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # http(s), mailto: not ours to check; anchors within the page
        path = (page.parent / target.split("#")[0]).resolve()
        if path not in committed and path not in folders:
            broken.append(target)
    assert not broken, f"{page.name}: links to files that are not committed: {broken}"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / t.split("#")[0]).resolve() for t in _targets(ROOT / "README.md")}
    missing = [p.name for p in PAGES[1:] if p not in linked]
    assert not missing, f"docs pages the README does not link: {missing}"


def test_the_link_pattern_finds_links_and_images():
    # the checker's own parser, on a known line: a test of the test
    sample = 'see [a](docs/a.md) and ![b](figures/b.png "t") and [c](http://x) `[d](e)`'
    assert LINK.findall(sample)[:3] == ["docs/a.md", "figures/b.png", "http://x"]
