"""The house style of every figure: the Okabe-Ito colour-blind-safe palette (one colour per
method throughout), the paper's notation in mathtext (:math:`\\mathbb{R}^2_4`,
:math:`\\mathbb{T}^2_3`, :math:`LI_f`, :math:`DI_f`, :math:`SI_f`, :math:`\\sigma_{\\max}(J)`), print
sizes (at most a page wide, text at least 8 pt), the panel style, and :func:`save_figure`, which
writes PNG and PDF atomically."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import matplotlib
from matplotlib.figure import Figure

from nets.results_io import make_folder, save_figure_file

__all__ = [
    "OKABE_ITO",
    "METHOD_COLORS",
    "REGULARIZER_COLORS",
    "REGULARIZER_TEX",
    "REGULARIZER_SHORT",
    "METHOD_MARKERS",
    "GROUP_TEX",
    "MEASURE_TEX",
    "TOL_MUTED",
    "CLASS_COLORS",
    "REGULARIZER_HATCHES",
    "PAGE_WIDTH",
    "PRINT_RC",
    "ELEMENT_MARKERS",
    "METHOD_ORDER",
    "methods_in_order",
    "group_tex",
    "print_sized",
    "style_axes",
    "save_figure",
]


#: Okabe & Ito (2008), "Color Universal Design": safe for the common colour-vision deficiencies.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "grey": "#999999",
}
METHOD_COLORS = {
    "WT": OKABE_ITO["blue"],
    "DA": OKABE_ITO["vermillion"],
    "IR": OKABE_ITO["bluish_green"],
}
#: Regularizer forms of Section 4.4 (colours of the IR variants in Figure 5).
REGULARIZER_COLORS = {
    "logit": OKABE_ITO["bluish_green"],
    "kl": OKABE_ITO["orange"],
    "normalized_logit": OKABE_ITO["reddish_purple"],
    "centered_normalized_logit": OKABE_ITO["sky_blue"],  # ours, beyond the paper
    "detached_normalized_logit": OKABE_ITO["yellow"],  # ours, beyond the paper
}
REGULARIZER_TEX = {
    "logit": r"logit: $\frac{1}{2}\|f(x)-f(gx)\|_2^2$",
    "kl": r"KL: $D_{KL}(u_x\,\|\,q_{gx})$",
    "normalized_logit": r"normalized: $\frac{\|f(x)-f(gx)\|_2^2}{\|f(x)\|_2^2}$",
}
REGULARIZER_SHORT = {"logit": "logit", "kl": "KL", "normalized_logit": "normalized logit",
                     "centered_normalized_logit": "centered norm.", "detached_normalized_logit": "detached norm."}
METHOD_MARKERS = {"WT": "s", "DA": "o", "IR": "^"}
GROUP_TEX = {"r4": r"$\mathbb{R}^2_4$", "t3": r"$\mathbb{T}^2_3$", "d4": r"$\mathbb{D}^2_4$"}
MEASURE_TEX = {
    "accuracy": "accuracy on the test orbit (%)",
    "LI": r"$LI_f$ (logit invariance error)",
    "DI": r"$DI_f$ (distribution invariance error, nats)",
    "SI": r"$SI_f$ (saliency invariance similarity)",
    "sigma_max": r"$\sigma_{\max}(J)$",
}
#: Paul Tol's 'muted' qualitative scheme: nine colour-blind-safe colours, none as pale as
#: Okabe-Ito's yellow and no black (black draws the highlighted orbits in the t-SNE figure).
TOL_MUTED = ["#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677",
             "#882255", "#AA4499"]
#: Nine classes (MNIST without the digit 9).
CLASS_COLORS = list(TOL_MUTED)
#: Hatches per model in Figure 5, so DA and the IR forms differ in greyscale too.
REGULARIZER_HATCHES = {"logit": "//", "kl": "..", "normalized_logit": "xx", "centered_normalized_logit": "++",
                       "detached_normalized_logit": "--"}
#: Print sizes: a figure is at most ~7.5 in (a page) wide, its text at least 8 pt.
PAGE_WIDTH = 7.2
PRINT_RC = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.titlesize": 10,
}
ELEMENT_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
METHOD_ORDER = ("WT", "DA", "IR")


def methods_in_order(d) -> list[str]:
    """The method names of ``d`` (a mapping or a sequence) in :data:`METHOD_ORDER`, others after them."""
    return [m for m in METHOD_ORDER if m in d] + [m for m in d if m not in METHOD_ORDER]


def group_tex(name: str) -> str:
    """Mathtext name of a group (``r4`` -> R^2_4); unknown names pass through."""
    return GROUP_TEX.get(name, name)


def print_sized(plot: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure under :data:`PRINT_RC`, and pin the tick label sizes on every axis
    (ticks are re-made at draw time, from whatever rcParams hold then)."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs) -> Figure:
        with matplotlib.rc_context(PRINT_RC):
            fig = plot(*args, **kwargs)
        for ax in fig.axes:
            ax.tick_params(labelsize=PRINT_RC["xtick.labelsize"])
        return fig

    return wrapper


def style_axes(ax) -> None:
    """The house style of every panel: a light grid, no top or right spine."""
    ax.grid(True, alpha=0.3, linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)



def save_figure(fig: Figure, stem: str | Path, dpi: int = 150) -> list[Path]:
    """Save ``fig`` as ``<stem>.png`` (at ``dpi``, at least 150) and ``<stem>.pdf`` (TrueType
    fonts); returns both paths."""
    stem = Path(stem)
    make_folder(stem.parent)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    # TrueType (Type 42) fonts in the PDF: Type 3 fonts render badly and some publishers refuse them.
    with matplotlib.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
        for p in paths:
            save_figure_file(fig, p, dpi=max(int(dpi), 150),
                             metadata=None if p.suffix == ".png" else {"CreationDate": None})
    return paths
