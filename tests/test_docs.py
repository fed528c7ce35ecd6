"""The README and docs/ hold together: every relative link resolves, and the README's first
screen keeps exactly the two commands for a fresh machine."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "reports" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def relative_links(text: str) -> list[str]:
    """Targets of markdown links that are not URLs or in-page anchors (anchors stripped)."""
    targets = [m.group(1) for m in LINK.finditer(text)]
    return [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    missing = [t for t in relative_links(page.read_text()) if not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_link_check_sees_a_broken_link():
    assert relative_links("see [a](docs/a.md#x), [b](https://x.org), [c](#top), ![f](img.png)") == ["docs/a.md", "img.png"]


def test_readme_is_short_and_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150, "README.md stays within ~150 lines: details go to docs/"
    first_screen = "\n".join(text.splitlines()[:40])
    block = re.search(r"```bash\n(.*?)```", first_screen, re.S)
    assert block, "the first screen shows the commands in a bash block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.split("#")[0].strip()]
    assert commands == ["make results", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci, ".ci/run calls the README's test command"
