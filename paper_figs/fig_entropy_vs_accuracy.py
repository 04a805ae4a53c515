"""Accuracy against achieved entropy across AEPO targets: the non-monotonic relation the paper
claims (C3), or its absence, as measured.

x: achieved entropy, the mean of `actor/entropy` over the second half of a run (nats);
y: a score of the run (%). One panel per score: greedy, sampled pass@1, pass@k (columns) at the
final and, when logged, the best validation (rows). Per AEPO target: faint dots for the runs, a
marker with 95% bootstrap CIs over seeds in both x and y. A least-squares quadratic through the
AEPO runs with its vertex: marked as a peak only when the fit is concave with its vertex inside
the measured range; otherwise the panel says there is no interior peak. GRPO appears as a reference marker with its CIs.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.scores import MEASURES, available_keys, table_score_label
from analysis.stats import bootstrap_ci, fit_quadratic, quadratic_peak, starts_of
from paper_figs import style

NAME = "fig_entropy_vs_accuracy"
MARKERS = {"grpo": "s"}
REFERENCES = ("grpo",)  # other methods are left out: their entropy is not set by a target


def score_grid(table: pd.DataFrame, source: str | None = None) -> list[list[str]]:
    """Rows of score keys (one row per point, one column per measure) of one source."""
    keys = [k for k in available_keys(table) if table[k].notna().any()]
    if source is None:
        source = keys[0].split(":")[0] if keys else "val"
    rows = []
    for point in ("final", "best"):
        row = [k for m in MEASURES for k in keys if k == f"{source}:{m}:{point}"]
        if row:
            rows.append(row)
    return rows


def _ci_point(ax, x: np.ndarray, y: np.ndarray, color, marker: str, label: str | None, groups=None) -> None:
    px, xlo, xhi = bootstrap_ci(x, groups=groups)
    py, ylo, yhi = bootstrap_ci(y, groups=groups)
    xerr = None if math.isnan(xlo) else [[px - xlo], [xhi - px]]
    yerr = None if math.isnan(ylo) else [[py - ylo], [yhi - py]]
    ax.errorbar(px, py, xerr=xerr, yerr=yerr, color=color, marker=marker, markersize=5, capsize=2,
                linewidth=1.0, label=label, zorder=3)


VARIANT_MARKERS = ("o", "^", "D", "v")


def draw_panel(ax, table: pd.DataFrame, key: str) -> dict:
    """One score panel; returns the fitted vertex (analysis.stats.quadratic_peak) and a one-line
    note on it for the panel title. Each variant of AEPO (a sweep that varied, say, alpha) has its
    own markers and its own fit: runs of different variants are never pooled."""
    aepo_all = table[(table["method"] == "aepo") & table[key].notna()]
    variant = aepo_all["variant"].fillna("") if "variant" in aepo_all else pd.Series("", index=aepo_all.index)
    notes, vertex = [], quadratic_peak((np.nan, np.nan, np.nan), (np.nan, np.nan))
    for i, v in enumerate(sorted(variant.unique())):
        aepo = aepo_all[variant == v]
        vertex = draw_variant(ax, aepo, key, v, VARIANT_MARKERS[i % len(VARIANT_MARKERS)], style.variant_linestyle(i))
        notes.append(f"{v}: {vertex['note']}" if v else vertex["note"])
    for m in REFERENCES:
        g = table[(table["method"] == m) & table[key].notna()]
        if not g.empty:
            _ci_point(ax, g["h_achieved"].to_numpy(), g[key].to_numpy() * 100, style.method_color(m),
                      MARKERS.get(m, "x"), f"{style.method_label(m)} (reference)", starts_of(g))
    if not len(ax.collections) and not ax.lines:
        style.empty_panel(ax, "no scores")
    return {**vertex, "note": "; ".join(notes) or "no AEPO runs"}


def draw_variant(ax, aepo: pd.DataFrame, key: str, variant: str, marker: str, linestyle) -> dict:
    """The AEPO runs of one variant: a CI marker per target and a quadratic fit through its runs."""
    targets = sorted(aepo["entropy_target"].unique())
    for t in targets:
        g = aepo[np.isclose(aepo["entropy_target"], t)]
        color = style.condition_color("aepo", t, targets)
        ax.scatter(g["h_achieved"], g[key] * 100, color=color, s=9, alpha=0.45, linewidths=0, zorder=2)
        _ci_point(ax, g["h_achieved"].to_numpy(), g[key].to_numpy() * 100, color, marker,
                  style.display_label("aepo", t, variant), starts_of(g))
    x, y = aepo["h_achieved"].to_numpy(dtype=float), aepo[key].to_numpy(dtype=float) * 100
    coef = fit_quadratic(x, y) if len(targets) >= 3 else (np.nan, np.nan, np.nan)
    vertex = quadratic_peak(coef, (x.min(), x.max()) if x.size else (np.nan, np.nan))
    if not math.isnan(coef[2]):
        xs = np.linspace(x.min(), x.max(), 100)
        ax.plot(xs, coef[0] + coef[1] * xs + coef[2] * xs**2, color=style.method_color("aepo"),
                linestyle=linestyle, linewidth=1.2, label=f"quadratic fit (AEPO {variant} runs)".replace("  ", " "),
                zorder=1)
        if vertex["peak"]:
            ax.axvline(vertex["x"], color="#777777", linewidth=0.8, linestyle=(0, (1, 2)))
            note = f"fitted peak at H = {vertex['x']:.2f}"
        else:
            note = "no interior peak in the fit"
    else:
        note = "fewer than 3 AEPO targets: no fit"
    return {**vertex, "note": note}


def plot(table: pd.DataFrame, source: str | None = None):
    """table: the run table (analysis.summary.run_table) of finished runs. Returns (fig, axes)."""
    grid = score_grid(table, source)
    with style.paper_style():
        if not grid:
            fig, ax = plt.subplots(figsize=(4, 3))
            style.empty_panel(ax, "no accuracy scores in these runs")
            return fig, np.array([[ax]])
        nrows, ncols = len(grid), max(len(r) for r in grid)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols + 0.4, 2.7 * nrows + 0.8),
                                 sharex=True, squeeze=False, layout="constrained")
        for i, row in enumerate(grid):
            for j, key in enumerate(row):
                ax = axes[i, j]
                vertex = draw_panel(ax, table, key)
                ax.set_title(f"{table_score_label(table, key)}\n{vertex['note']}",
                             fontsize=8)
                ax.set_ylabel("accuracy (%)")
            for ax in axes[i, len(row):]:
                ax.set_visible(False)
        for ax in axes[-1]:
            ax.set_xlabel("achieved entropy H, 2nd-half mean (nats)")
        handles = {}
        for ax in axes.flat:
            for h, l in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(l, h)
        if handles:
            fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                       ncol=min(len(handles), 4))
        aepo = table[table["method"] == "aepo"]
        n = aepo.groupby("condition")["run_id"].count() if "condition" in aepo else aepo.groupby("entropy_target")["run_id"].count()
        seeds = f"{n.min()}" if len(n) and n.min() == n.max() else f"{n.min()}-{n.max()}" if len(n) else "0"
        starts = aepo["start"].nunique() if "start" in aepo else 1
        over = f"{starts} starts x seeds" if starts > 1 else "seeds"
        fig.suptitle(f"Accuracy against achieved entropy ({seeds} run(s) per AEPO condition; "
                     f"bars: 95% bootstrap CIs over {over})")
    return fig, axes
