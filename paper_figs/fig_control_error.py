"""Control error against the target, one line per controller (issue 17): mean |H - H*| over the
second half (against the target in force at each step), mean over seeds with its 95% bootstrap CI,
at each constant target; a scheduled target (an anneal) is drawn apart at its mean target, with
an open marker. One panel per lab start (the variant's `lab=` setting) when there are several.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.load import METHOD_NAMES, TARGETED
from analysis.stats import ci
from paper_figs import style

NAME = "fig_control_error"
VALUE = "mae_2nd_half"


def split_variant(variant: str) -> tuple[str, str, bool]:
    """(lab, the variant's other settings, scheduled?) of a variant label like 'c=pi_alpha lab=tiny ts=linear'."""
    parts = variant.split()
    lab = next((p.split("=", 1)[1] for p in parts if p.startswith("lab=")), "")
    scheduled = any(p.startswith("ts=") and p != "ts=constant" for p in parts)
    rest = " ".join(p for p in parts if not p.startswith(("lab=", "ts=", "te=")))
    return lab, rest, scheduled


def plot(table: pd.DataFrame):
    """table: the run table (analysis.summary.run_table). Returns (fig, axes)."""
    rows = table[table["method"].isin(TARGETED) & table["entropy_target"].notna() & table[VALUE].notna()]
    rows = rows.assign(variant=rows["variant"].fillna("") if "variant" in rows else "")
    parsed = rows["variant"].map(split_variant)
    rows = rows.assign(lab=parsed.map(lambda x: x[0]), rest=parsed.map(lambda x: x[1]), scheduled=parsed.map(lambda x: x[2]))
    labs = sorted(rows["lab"].unique()) or [""]
    with style.paper_style():
        fig, axes = plt.subplots(1, len(labs), figsize=(3.6 * len(labs) + 0.6, 3.2), sharey=True, squeeze=False,
                                 layout="constrained")
        for ax, lab in zip(axes[0], labs):
            here = rows[rows["lab"] == lab]
            for i, ((m, rest), g) in enumerate(here.groupby(["method", "rest"], sort=False)):
                color = style.method_color(m)
                label = f"{METHOD_NAMES.get(m, m)} {rest}".strip()
                const = g[~g["scheduled"]]
                pts = [(t, *ci(gg, VALUE)) for t, gg in const.groupby("entropy_target")]
                if pts:
                    x, p, lo, hi = (np.array(v, dtype=float) for v in zip(*pts))
                    yerr = None if np.isnan(lo).all() else [p - lo, hi - p]
                    ax.errorbar(x, p, yerr=yerr, color=color, marker="o", markersize=4, capsize=2, linewidth=1.2,
                                linestyle=style.variant_linestyle(i), label=label)
                for _, gg in g[g["scheduled"]].groupby("condition"):
                    p, lo, hi = ci(gg, VALUE)
                    x = float(gg["h_achieved"].mean())  # an anneal: where its entropy sat, second half
                    ax.errorbar([x], [p], yerr=None if np.isnan(lo) else [[p - lo], [hi - p]], color=color,
                                marker="o", markerfacecolor="white", markersize=6, capsize=2, linestyle="none")
            ax.set_title(f"lab start {lab}" if lab else "all runs")
            ax.set_xlabel("target H* (nats)")
        axes[0, 0].set_ylabel("mean |H - H*|, second half (nats)")
        handles: dict = {}
        for ax in axes.flat:
            for h, lbl in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lbl, h)
        if handles:
            fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(len(handles), 4))
        fig.suptitle("Control error against the target (95% CIs over seeds; open markers: an annealed "
                     "target, placed at its achieved entropy)")
    return fig, axes
