"""REPORT.md's subsection for ``si_settings.json`` (ours, beyond the paper): Table 1's SI of WT, DA
and IR under the paper's saliency map and under maps that change one of its choices
(:mod:`nets.experiments.si_settings`), with the claims' SI checks decided under each.

The reading. Per group and per claim check (claim 1: WT SI, claim 2: DA SI, claim 3: IR SI), the
settings under which the check's outcome differs from its outcome under the paper's map; a claim
whose SI check keeps its outcome under every map does not rest on the map's choices, one whose
outcome moves does. IR - DA (paired over seeds) says whether IR's SI stays above DA's.

Pure: a results dict in, Markdown lines out; nothing when ``si_settings.json`` is absent.
"""

from __future__ import annotations

from typing import Any, Mapping

from nets.groups import group_label
from nets.markdown import markdown_table

__all__ = ["TITLE", "CHECKS", "table_rows", "moved_checks", "si_settings_section"]

TITLE = "### Beyond the paper: Table 1's SI under other saliency maps"

#: The method whose SI each claim checks (:func:`nets.experiments.si_settings.summarize`).
CHECKS = {"WT": "claim 1", "DA": "claim 2", "IR": "claim 3"}
PAPER = "paper"


def _num(v: float | None, sign: str = "") -> str:
    return "n/a" if v is None or v != v else f"{v:{sign}.3f}"


def _cell(e: Mapping[str, Any], sign: str = "") -> str:
    s = f"{_num(e['mean'], sign)} [{_num(e['low'], sign)}, {_num(e['high'], sign)}]"
    return s + (f" {e['check']['outcome']}" if "check" in e else "")


def table_rows(result: Mapping[str, Any]) -> list[list[str]]:
    """Markdown rows ``[group, setting, WT, DA, IR, IR - DA]`` of a ``si_settings.json`` dict, each
    cell ``mean [low, high]`` (t 95% interval over seeds) and the claim check's outcome."""
    rows = []
    for g, entry in result["groups"].items():
        for name, s in entry["settings"].items():
            d = s.get("IR_minus_DA")
            rows.append([group_label(g), name.replace("|", "\\|"), *(_cell(s["methods"][m]) if m in s["methods"] else "n/a" for m in CHECKS),
                         "" if d is None else _cell(d, "+")])
    return rows


def moved_checks(entry: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """One group's ``{method: [(setting, outcome), ...]}``: the settings under which the method's SI
    check has another outcome than under the paper's map (empty list: the same under every map).
    Methods without a check, or a file without the paper setting, give ``{}``."""
    settings = entry["settings"]
    if PAPER not in settings:
        return {}
    out = {}
    for m in CHECKS:
        base = settings[PAPER]["methods"].get(m, {}).get("check")
        if base is None:
            continue
        out[m] = [(name, s["methods"][m]["check"]["outcome"]) for name, s in settings.items()
                  if name != PAPER and s["methods"].get(m, {}).get("check", {}).get("outcome", base["outcome"])
                  != base["outcome"]]
    return out


def _reading(entry: Mapping[str, Any]) -> str:
    settings = entry["settings"]
    parts = []
    for m, moved in moved_checks(entry).items():
        check = settings[PAPER]["methods"][m]["check"]
        head = f"{check['what']} {check['outcome']} under the paper's map"
        if not moved:
            parts.append(f"{head} and under every other map")
        else:
            parts.append(f"{head}; {', '.join(f'{o} under {s}' for s, o in moved)}")
    lows = {name: s["IR_minus_DA"].get("low") for name, s in settings.items() if s.get("IR_minus_DA")}
    below = [name for name, low in lows.items() if not (low is not None and low > 0)]
    if lows and all(low is None for low in lows.values()):
        parts.append("IR - DA has no interval (one seed)")
    elif lows:
        parts.append("IR's SI is above DA's (paired interval above 0) under every map" if not below
                     else f"IR's SI is not shown above DA's under {', '.join(below)}")
    return "; ".join(parts)


def si_settings_section(result: Mapping[str, Any] | None, *, title: str = TITLE) -> list[str]:
    """The Markdown lines of the subsection headed ``title`` (``[]`` when ``result`` is ``None``)."""
    if not result:
        return []
    protocol = result.get("protocol", {})
    lines = [title + "\n",
             "The paper calls its saliency map a hyper-parameter. Here Table 1's models (the same checkpoints, "
             f"{protocol.get('samples', 'the same samples')}) are measured under its map "
             f"({protocol.get('paper_map', 'paper')}) and under maps that change one choice; "
             f"{protocol.get('nu', '')}{''.join('; ' + protocol[k] for k in ('models', 'methods') if k in protocol)}. Each cell: SI mean [Student's t 95% interval over seeds] and the claim's "
             "SI check decided on it (thresholds as above); IR - DA paired over seeds.\n"]
    lines += [markdown_table(["group", "saliency map", "WT SI", "DA SI", "IR SI", "IR - DA"], table_rows(result)), ""]
    readings = [f"**{group_label(g)}**: {_reading(e)}." for g, e in result["groups"].items()]
    lines.append("**Which checks depend on the map** (outcomes that differ from the paper map's): "
                 + " ".join(readings) + "\n")
    checks = [f"{group_label(g)} {e['paper_check']['max_abs_difference']:.2g}"
              for g, e in result["groups"].items() if e.get("paper_check")
              and e["paper_check"].get("max_abs_difference") is not None]
    if checks:
        lines.append("Same models as Table 1: the paper map's per-seed SI against the recorded Table 1's, largest "
                     f"absolute difference: {', '.join(checks)}.\n")
    return lines
