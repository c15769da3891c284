"""Every ```python block of the README and docs/ runs as written, so the docs cannot
drift from the API.

The blocks of one page run in order in one fresh Python process (like a
notebook: a later block may use what an earlier one defined), in an empty
temporary directory, with downloads pointed at the local mirror of the shared
datasets. A block preceded by ``<!-- no-test -->`` (with a reason) is skipped:
Keras originals, GPU-only or hour-long examples.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
SKIP = "<!-- no-test"  # <!-- no-test --> or <!-- no-test: reason -->


def python_blocks(page: Path) -> list[str]:
    """The runnable ```python blocks of ``page`` (those not marked no-test)."""
    text = page.read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip().splitlines()
        if before and before[-1].strip().startswith(SKIP):
            continue
        blocks.append(m.group(1))
    return blocks


def _pages_with_code() -> list[Path]:
    return [p for p in PAGES if python_blocks(p)]


def test_every_page_with_code_is_collected() -> None:
    assert REPO / "README.md" in _pages_with_code()


@pytest.mark.parametrize("page", _pages_with_code(), ids=lambda p: p.name)
def test_code_blocks_run(page: Path, tmp_path: Path, data_mirror: str) -> None:
    script = "\n\n".join(
        f"# --- block {i + 1} of {page.name}\n{block}"
        for i, block in enumerate(python_blocks(page))
    )
    (tmp_path / "doc_blocks.py").write_text(script, encoding="utf-8")
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    proc = subprocess.run(
        [sys.executable, "doc_blocks.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, f"{page.name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
