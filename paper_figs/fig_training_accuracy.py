"""Training accuracy curves. Rows: (a) accuracy of the on-policy training batch
(`critic/score/mean`, a trailing rolling mean, since one batch is noisy) and (b) held-out greedy
accuracy at the validation steps (`val/<benchmark>/accuracy`). Columns, so that no panel holds
more than a handful of curves: the baselines; AEPO at each target (shades of AEPO's blue, darker
= higher target) with GRPO; the ablations with AEPO at their targets and GRPO.
Means over seeds with 95% bootstrap bands.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd

from analysis.load import ABLATIONS, BASELINES
from paper_figs import style
from paper_figs.curves import conditions, curve, seeds_note, smoothing_window

NAME = "fig_training_accuracy"
TRAIN = "critic/score/mean"


def val_key(steps: pd.DataFrame) -> str | None:
    keys = sorted(c for c in steps.columns if c.startswith("val/") and c.endswith("/accuracy"))
    return keys[0] if keys else None


def groups(steps: pd.DataFrame) -> list[tuple[str, list[tuple[str, float, str]]]]:
    """(column title, conditions) of each non-empty column."""
    conds = conditions(steps)
    abl_targets = {t for m, t, _ in conds if m in ABLATIONS}
    cols = [("baselines", [c for c in conds if c[0] in BASELINES]),
            ("AEPO at each target", [c for c in conds if c[0] in ("grpo", "aepo")]),
            ("ablations", [c for c in conds if c[0] == "grpo" or c[0] in ABLATIONS
                           or (c[0] == "aepo" and c[1] in abl_targets)])]
    return [(title, c) for title, c in cols if any(m != "grpo" for m, _, _ in c) or title == "baselines" and c]


def plot(steps: pd.DataFrame):
    """steps: the tidy steps frame (analysis.load). Returns (fig, axes)."""
    cols = groups(steps) or [("no runs", [])]
    window = smoothing_window(steps)
    val = val_key(steps)
    aepo_targets = sorted({t for m, t, _ in conditions(steps) if m == "aepo"})
    aepo_variants = sorted({v for m, _, v in conditions(steps) if m == "aepo"})
    rows = [(TRAIN, window, "batch accuracy (%)"), (val, 1, "held-out accuracy (%)")]
    note = (f"top: training batch, rolling mean over {window} steps; bottom: greedy accuracy on the "
            f"{val.split('/')[1] if val else '(none logged)'} validation set")
    with style.paper_style():
        fig, axes = plt.subplots(2, len(cols), figsize=(3.0 * len(cols) + 0.6, 5.6), sharex=True,
                                 sharey="row", squeeze=False, layout="constrained")
        drawn = []
        for j, (title, conds) in enumerate(cols):
            for i, (key, w, ylabel) in enumerate(rows):
                ax = axes[i, j]
                for m, t, v in conds:
                    c = curve(steps, m, t, key, w, variant=v) if key else None
                    if c:
                        drawn.append(c)
                        band = c.band.assign(**{k: c.band[k] * 100 for k in ("point", "lo", "hi")})
                        shades = aepo_targets if m == "aepo" and title.startswith("AEPO") else [t]
                        color = style.condition_color(m, t, shades)
                        line = style.variant_linestyle(aepo_variants.index(v)) if m == "aepo" else "-"
                        style.draw_band(ax, band, color, style.display_label(m, math.nan if m == "grpo" else t, v),
                                        marker="o" if key == val else None, markersize=2.5, linestyle=line)
                if not ax.lines:
                    style.empty_panel(ax, f"no {key or 'validation'} logged")
                if j == 0:
                    ax.set_ylabel(ylabel)
            axes[0, j].set_title(title)
            axes[1, j].set_xlabel(style.STEP_LABEL)
            handles, labels = axes[0, j].get_legend_handles_labels()
            if handles:
                axes[1, j].legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=1)
        fig.suptitle(f"Accuracy over training\n{note}\n{seeds_note(drawn)}")
    return fig, axes
