"""docs/performance.md is written by several benchmarks, each owning one section."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def replace_section(title: str, section: str) -> None:
    """Put ``section`` (starting with ``## title``) in place of that section, or append it;
    the other sections stay as they are."""
    current = DOC.read_text() if DOC.exists() else "# Performance\n"
    pattern = re.compile(rf"## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: section.rstrip() + "\n\n", current).rstrip() + "\n"
    else:
        updated = current.rstrip() + "\n\n" + section.rstrip() + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(updated)
