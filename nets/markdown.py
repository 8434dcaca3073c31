"""Markdown tables: the one formatter behind REPORT.md's tables (:mod:`nets.report` and its
sections) and the notebooks' (:mod:`nets.notebooks`)."""

from __future__ import annotations

from typing import Sequence

__all__ = ["markdown_table"]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table: the header row, the ``|---|`` separator and one line per row (cells
    written with ``str``), joined by newlines, no trailing newline."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])
