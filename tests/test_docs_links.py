"""No project document points to a file a user of the repository does not have (issue 25): every
relative link resolves, every backticked repository path exists, and nothing points outside the
repository (the reference notes the project was built from are not part of it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted(
    [
        ROOT / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "charts").rglob("*.md"),
        *(ROOT / "schemas").glob("*.md"),
        *(ROOT / "tests" / "fixtures").rglob("*.md"),
    ]
)
LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH = re.compile(r"`([\w.-]+(?:/[\w.-]+)+\.(?:py|md|json|yaml|yml|toml|txt|tpl))`")
OUTSIDE = re.compile(r"`[^`]*(?:\bshared/|/work/)[^`]*`")


def names(document: Path) -> str:
    return str(document.relative_to(ROOT))


@pytest.mark.parametrize("document", DOCUMENTS, ids=names)
def test_links_and_paths_name_files_of_the_repository(document: Path) -> None:
    text = document.read_text()
    broken = []
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "#", "mailto:")):
            continue
        path = target.split("#", 1)[0]
        if path and not (document.parent / path).exists():
            broken.append(target)
    for path in PATH.findall(text):
        if not ((ROOT / path).exists() or (document.parent / path).exists()):
            broken.append(path)
    broken += OUTSIDE.findall(text)
    assert broken == []
