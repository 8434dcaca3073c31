"""Every relative link in the tracked Markdown leads somewhere: the file or folder it names exists,
and an anchor (``docs/audit.md#command-line``) names one of that file's headings, by GitHub's rule
for heading ids. A renamed heading or a moved file must take its links along. The Markdown is
parsed by markdown-it-py (jupytext's parser), so links in code blocks and code spans are not links."""

from __future__ import annotations

import functools
import subprocess
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
MD = MarkdownIt("commonmark").enable("table")


def tracked_markdown() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z", "--", "*.md"], cwd=ROOT, capture_output=True, check=True)
    return [ROOT / p for p in out.stdout.decode().split("\0") if p]


def github_slug(text: str) -> str:
    """The id GitHub gives a heading of plain text ``text``: lower case; letters, marks, decimal
    digits, ``_``, ``-`` and spaces kept, every other character dropped; each space a hyphen."""
    kept = (c for c in text.strip().lower()
            if c in " -_" or unicodedata.category(c)[0] in "LM" or unicodedata.category(c) == "Nd")
    return "".join(kept).replace(" ", "-")


def _plain(inline) -> str:
    return "".join(t.content for t in inline.children or [] if t.type in ("text", "code_inline"))


@functools.lru_cache(maxsize=None)
def anchors(path: Path) -> frozenset[str]:
    """The ids of ``path``'s headings; a repeated one is suffixed ``-1``, ``-2``, ... as on GitHub."""
    tokens, seen = MD.parse(path.read_text()), {}
    for opening, inline in zip(tokens, tokens[1:]):
        if opening.type == "heading_open":
            base = github_slug(_plain(inline))
            n = seen.get(base, 0)
            seen[base] = n + 1
            seen.setdefault(f"{base}-{n}" if n else base, 1)
    return frozenset(seen)


def links(path: Path) -> list[str]:
    """The targets of ``path``'s links and images, as written."""
    return [child.attrs["href" if child.type == "link_open" else "src"]
            for token in MD.parse(path.read_text()) if token.type == "inline"
            for child in token.children or [] if child.type in ("link_open", "image")]


def _relative(target: str) -> bool:
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def broken(path: Path) -> list[str]:
    """``path``'s relative links whose file is missing or whose anchor names no heading there."""
    bad = []
    for target in filter(_relative, links(path)):
        parts = urlsplit(target)
        dest = (path.parent / unquote(parts.path)).resolve() if parts.path else path
        if not dest.exists():
            bad.append(f"{target} (no such file)")
        elif parts.fragment and dest.suffix == ".md" and unquote(parts.fragment) not in anchors(dest):
            bad.append(f"{target} (no such heading)")
    return bad


def test_githubs_heading_ids():
    assert github_slug("Page faults on the CPU (benchmarks/results/malloc_env_cpu.json)") == \
        "page-faults-on-the-cpu-benchmarksresultsmalloc_env_cpujson"
    assert github_slug("IR beyond the paper's ν grid on T3") == "ir-beyond-the-papers-ν-grid-on-t3"
    assert github_slug("Your own model: --model pkg.module:factory") == "your-own-model---model-pkgmodulefactory"
    assert github_slug("Proposition 3.1") == "proposition-31"


def test_a_repeated_heading_gets_a_numbered_id(tmp_path):
    doc = tmp_path / "a.md"
    doc.write_text("# Results\n\n## Results\n\n### Results\n\ntext with `# not a heading`\n")
    assert anchors(doc) == {"results", "results-1", "results-2"}


def test_a_link_to_a_missing_file_or_heading_is_found_and_one_in_code_is_not(tmp_path):
    (tmp_path / "b.md").write_text("# Here\n")
    doc = tmp_path / "a.md"
    doc.write_text("[ok](b.md#here) [gone](c.md) [no](b.md#there) [self](#top) `[code](d.md)` "
                   "[web](https://example.org/x.md)\n\n# Top\n\n```\n[block](e.md)\n```\n")
    assert broken(doc) == ["c.md (no such file)", "b.md#there (no such heading)"]


def test_the_check_sees_the_links_it_guards():
    docs = tracked_markdown()
    assert ROOT / "README.md" in docs and len(docs) > 20
    targets = [t for p in docs for t in links(p) if _relative(t)]
    assert len(targets) > 100 and sum("#" in t for t in targets) > 40


#: The links that lead nowhere on purpose, each exactly: three reports written while their run's saliency
#: maps existed, whose saliency.json and figures are left out of the 16 MiB tree (.gitignore; the reports
#: cannot be rendered again without them: tests/test_committed_reports.py's NOT_RENDERABLE).
LEFT_OUT = {
    "results/bf16/quick/REPORT.md": ["figures/saliency_r4.png (no such file)",
                                     "figures/saliency_t3.png (no such file)"],
    "results/d4/paper/REPORT.md": ["figures/saliency_d4.png (no such file)"],
    "results/d4/quick/REPORT.md": ["figures/saliency_r4.png (no such file)", "figures/saliency_d4.png (no such file)"],
}


@pytest.mark.parametrize("path", tracked_markdown(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_leads_somewhere(path):
    assert broken(path) == LEFT_OUT.get(path.relative_to(ROOT).as_posix(), [])
