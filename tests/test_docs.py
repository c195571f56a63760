"""Every Python block of README.md and docs/*.md runs: the blocks of one page in order, in one
namespace, in a fresh folder."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for i, block in enumerate(python_blocks(page)):
        code = compile(block, f"{page.name} block {i + 1}", "exec")
        exec(code, namespace)


def test_every_page_with_code_is_found():
    """The pattern finds blocks (a changed fence style would silently skip every page)."""
    assert python_blocks(ROOT / "docs" / "library.md")
    assert python_blocks(ROOT / "README.md")
