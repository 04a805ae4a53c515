"""The one style every figure shares: LaTeX off, Okabe-Ito colour-blind palette, one fixed
colour per method, AEPO targets as shades of AEPO's blue, target lines dashed and grey."""

from __future__ import annotations

import colorsys
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from analysis.load import METHOD_NAMES
from analysis.tables import display_label  # noqa: F401  (figures label conditions as tables do)

import matplotlib

matplotlib.use("Agg")  # files only, never a display

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

# Okabe & Ito (2008), a palette readable under the common colour-vision deficiencies.
METHOD_COLORS = {
    "grpo": "#000000",
    "entropy_reg": "#E69F00",
    "entropy_adv": "#009E73",
    "aepo": "#0072B2",
    "aepo_no_temp": "#CC79A7",
    "aepo_with_negatives": "#D55E00",
    # methods not in the paper: Okabe-Ito's sky blue, then Paul Tol's muted palette (also colour-blind safe)
    "entropy_adaptive": "#56B4E9",
    "entropic": "#882255",
    "entrocraft": "#44AA99",
    "clip_higher": "#999933",
    "clip_cov": "#AA4499",
    "kl_cov": "#DDCC77",
}
TARGET_LINE = {"color": "#555555", "linestyle": (0, (4, 3)), "linewidth": 1.2, "zorder": 1}
BAND_ALPHA = 0.2
ENTROPY_LABEL = "entropy H (nats)"
STEP_LABEL = "training step"

RC = {
    "text.usetex": False,
    "font.size": 9,
    "axes.titlesize": 9,
    "figure.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.5,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,  # embed TrueType: text stays text in the PDF
}


@contextmanager
def paper_style() -> Iterator[None]:
    """Use as `with paper_style(): fig, ax = plt.subplots()`."""
    with plt.rc_context(RC):
        yield


def method_label(method: str) -> str:
    return METHOD_NAMES.get(method, method)


def variant_label(method: str, variant: str) -> str:
    """'AEPO', or 'AEPO a=1.0' for one variant of a sweep that varied alpha."""
    return f"{method_label(method)} {variant}".strip()


VARIANT_LINESTYLES = ("-", (0, (5, 2)), (0, (1, 1.5)), (0, (5, 2, 1, 2)))


def variant_linestyle(i: int):
    """The i-th variant of a method: solid, dashed, dotted, dash-dot (colour stays the method's)."""
    return VARIANT_LINESTYLES[i % len(VARIANT_LINESTYLES)]


def method_color(method: str) -> str:
    return METHOD_COLORS.get(method, "#999999")


def shade(color: str, i: int, n: int) -> tuple[float, float, float]:
    """The i-th of n shades of a colour, light to dark (for AEPO at n targets)."""
    if n <= 1:
        return mcolors.to_rgb(color)
    h, l, s = colorsys.rgb_to_hls(*mcolors.to_rgb(color))
    light = 0.72 - 0.47 * i / (n - 1)  # 0.72 (light) .. 0.25 (dark)
    return colorsys.hls_to_rgb(h, light, s)


def condition_color(method: str, target: float, targets: Sequence[float]) -> tuple[float, float, float] | str:
    """A method's colour; for a method with several targets, its shade for this target."""
    ts = sorted({t for t in targets if not math.isnan(t)})
    if math.isnan(target) or len(ts) <= 1:
        return method_color(method)
    return shade(method_color(method), ts.index(target), len(ts))


def draw_band(ax, band, color, label: str | None = None, **kw):
    """Mean curve and its CI band (band: analysis.stats.curve_band frame)."""
    (line,) = ax.plot(band["step"], band["point"], color=color, label=label, **kw)
    if band["lo"].notna().any():
        ax.fill_between(band["step"], band["lo"], band["hi"], color=color, alpha=BAND_ALPHA, linewidth=0)
    return line


def draw_target(ax, target: float, label: bool = True) -> None:
    """A dashed grey horizontal line at the target, labelled at its right end."""
    ax.axhline(target, **TARGET_LINE)
    if label:
        ax.annotate(f"H*={target:.2f}", xy=(1.0, target), xycoords=("axes fraction", "data"),
                    xytext=(2, 0), textcoords="offset points", va="center", ha="left",
                    fontsize=7, color=TARGET_LINE["color"])


def empty_panel(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#777777")
    ax.set_xticks([])
    ax.set_yticks([])


def save(fig, out_dir: str | Path, name: str) -> list[Path]:
    """Write NAME.png and NAME.pdf under out_dir; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.{ext}" for ext in ("png", "pdf")]
    for p in paths:
        fig.savefig(p)
    plt.close(fig)
    return paths
