"""The entropy controllers side by side (issue 17): one panel per controller (a method with a
target, and each of its variants, e.g. AEPO's pi_alpha and bang-bang; rows: a variant's other
settings such as the lab start), every target condition's mean entropy with its 95% band over
seeds (and starts), and the target each condition was given drawn as a dashed line that follows
its schedule (`controller/target`, step by step).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.load import METHOD_NAMES, TARGETED
from paper_figs import style
from paper_figs.curves import curve, seeds_note

NAME = "fig_controllers"
VALUE = "actor/entropy"
TARGET = "controller/target"


def panels(steps: pd.DataFrame) -> list[tuple[str, str]]:
    """(method, variant without target settings) of every controller with a target, in table order."""
    rows = steps[steps["method"].isin(TARGETED) & steps["entropy_target"].notna()]
    out = []
    for m in TARGETED:
        for v in sorted(rows.loc[rows["method"] == m, "variant"].fillna("").unique()):
            out.append((m, v))
    return out


def plot(steps: pd.DataFrame):
    """steps: the tidy steps frame (analysis.load). Returns (fig, axes)."""
    cells = panels(steps)
    with style.paper_style():
        if not cells:
            fig, ax = plt.subplots(figsize=(4, 3))
            style.empty_panel(ax, "no runs with an entropy target")
            return fig, np.array([[ax]])
        ncols = min(4, len(cells))
        nrows = math.ceil(len(cells) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols + 0.4, 2.5 * nrows + 0.9), sharex=True,
                                 sharey=True, squeeze=False, layout="constrained")
        drawn = []
        for ax, (m, v) in zip(axes.flat, cells):
            rows = steps[(steps["method"] == m) & (steps["variant"].fillna("") == v)]
            conds = sorted(rows["condition"].unique())
            for i, cond in enumerate(conds):
                t = float(rows.loc[rows["condition"] == cond, "entropy_target"].iloc[0])
                c = curve(rows[rows["condition"] == cond], m, t, VALUE, variant=v)
                if c is None:
                    continue
                drawn.append(c)
                color = style.shade(style.method_color(m), i, len(conds))
                style.draw_band(ax, c.band, color, cond.split(" ")[1] if " " in cond else cond)  # 'H=0.50' 
                if TARGET in rows:
                    target = rows[rows["condition"] == cond].groupby("step")[TARGET].mean()
                    ax.plot(target.index, target.to_numpy(), **{**style.TARGET_LINE, "color": color})
            ax.set_title(f"{METHOD_NAMES.get(m, m)}\n{v}".strip(), fontsize=8)
            ax.legend(fontsize=6, loc="upper right")
        for ax in axes.flat[len(cells):]:
            ax.set_visible(False)
        for ax in axes[-1]:
            ax.set_xlabel(style.STEP_LABEL)
        for ax in axes[:, 0]:
            ax.set_ylabel(style.ENTROPY_LABEL)
        fig.suptitle(f"Entropy under each controller; dashed: the target it was given\n{seeds_note(drawn)}")
    return fig, axes
