"""Markdown tables and figure links: the one formatter behind REPORT.md's tables and figures
(:mod:`nets.report` and its sections) and the notebooks' tables (:mod:`nets.notebooks`)."""

from __future__ import annotations

from typing import Mapping, Sequence

__all__ = ["IR_LABELS", "markdown_table", "figure_lines", "model_label"]

#: Each IR form's name in REPORT.md's tables (the last two are ours: :mod:`nets.experiments.centered`).
IR_LABELS = {"logit": "IR, logit", "kl": "IR, KL", "normalized_logit": "IR, normalized logit",
             "centered_normalized_logit": "IR, centered normalized logit (ours)",
             "detached_normalized_logit": "IR, detached normalized logit (ours)"}  # nets.train.REGULARIZERS


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table: the header row, the ``|---|`` separator and one line per row (cells
    written with ``str``), joined by newlines, no trailing newline."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def figure_lines(fig_dir: str, stem: str, caption: str, available: set[str] | None = None) -> list[str]:
    """A figure in REPORT.md: the PNG under ``fig_dir`` inline, then its caption; when ``available``
    (the figure files drawn) lacks ``<stem>.png``, one line saying it was not drawn. The PDF drawn
    beside the PNG is not linked: PDFs are never committed (.gitignore), so in a committed results
    folder such a link would lead nowhere (tests/test_docs_links.py)."""
    if available is not None and f"{stem}.png" not in available:
        return [f"*(figure `{stem}` not drawn)*\n"]
    return [f"![{caption}]({fig_dir}/{stem}.png)\n", f"*{caption}*\n"]


def model_label(model: Mapping, bold: Sequence[str] = ()) -> str:
    """A results entry's name in a table: its ``method``, or for IR its form's :data:`IR_LABELS`
    entry (the form's own name when unlisted), in bold when the form is in ``bold``."""
    if model["method"] != "IR":
        return model["method"]
    form = model.get("regularizer")
    label = IR_LABELS.get(form, form)
    return f"**{label}**" if form in bold else label
