"""Per-condition curves over steps (mean over seeds with a bootstrap band), shared by figures."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.load import METHOD_ORDER
from analysis.stats import curve_band


@dataclass
class Curve:
    method: str
    target: float  # NaN for methods without a target
    variant: str  # the condition's other settings ("" when the sweep varied only target and seed)
    n_runs: int  # seeds of this one condition
    band: pd.DataFrame  # columns step, n, point, lo, hi


def conditions(steps: pd.DataFrame, methods: tuple[str, ...] = METHOD_ORDER) -> list[tuple[str, float, str]]:
    """(method, target, variant) of every condition present, in METHOD_ORDER, then by variant and target."""
    cols = steps.assign(variant=_variant(steps))[["method", "entropy_target", "variant"]].drop_duplicates()
    out = [(m, float(t), v) for m, t, v in cols.itertuples(index=False) if m in methods]
    return sorted(out, key=lambda p: (methods.index(p[0]), p[2], -1.0 if math.isnan(p[1]) else p[1]))


def _variant(frame: pd.DataFrame) -> pd.Series:
    return frame["variant"].fillna("") if "variant" in frame else pd.Series("", index=frame.index)


def select(steps: pd.DataFrame, method: str, target: float, variant: str | None = None) -> pd.DataFrame:
    """The rows of one condition (variant None: every variant of the method at that target)."""
    rows = steps[steps["method"] == method]
    if variant is not None:
        rows = rows[_variant(rows) == variant]
    if math.isnan(target):
        return rows
    return rows[np.isclose(rows["entropy_target"], target)]


def variants_of(steps: pd.DataFrame, method: str) -> list[str]:
    return sorted(_variant(steps[steps["method"] == method]).unique())


def smooth(steps: pd.DataFrame, value: str, window: int) -> pd.DataFrame:
    """Each run's `value` replaced by its trailing rolling mean over `window` records."""
    if window <= 1:
        return steps
    out = steps.sort_values(["run_id", "step"]).copy()
    out[value] = out.groupby("run_id")[value].transform(lambda s: s.rolling(window, min_periods=1).mean())
    return out


def curve(steps: pd.DataFrame, method: str, target: float, value: str, window: int = 1,
          variant: str = "") -> Curve | None:
    """The mean curve over the seeds of one condition, or None when it has no value logged."""
    rows = select(steps, method, target, variant)
    if value not in rows or rows[value].notna().sum() == 0:
        return None
    rows = smooth(rows[rows[value].notna()], value, window)
    return Curve(method, target, variant, rows["run_id"].nunique(), curve_band(rows, value))


def smoothing_window(steps: pd.DataFrame, fraction: float = 0.05) -> int:
    """A rolling window of about `fraction` of the longest run (at least 1 record)."""
    longest = int(steps.groupby("run_id")["step"].count().max()) if len(steps) else 1
    return max(1, int(round(fraction * longest)))


def seeds_note(curves: list[Curve]) -> str:
    """'mean of 3 seed(s) per curve; ...', or the honest range when it varies. A curve is one
    condition (analysis.load): its runs differ only in their seed."""
    ns = sorted({c.n_runs for c in curves})
    if not ns:
        return ""
    count = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"
    band = "95% bootstrap bands over seeds (and starts)" if ns[-1] > 1 else "single seed, no bands"
    return f"mean of {count} run(s) per curve; {band}"


def target_panels(steps: pd.DataFrame, value: str, references: tuple[str, ...], targeted: tuple[str, ...],
                  targets: list[float], title: str, ylabel: str):
    """One panel per target: each reference method (no target) and each targeted method at that
    target, the target as a dashed line. Returns (fig, axes, curves drawn)."""
    import matplotlib.pyplot as plt

    from paper_figs import style

    panels = targets or [math.nan]
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(2.7 * ncols + 0.6, 5.0), 2.4 * nrows + 0.9),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    refs = [c for m in references for v in variants_of(steps, m) if (c := curve(steps, m, math.nan, value, variant=v))]
    drawn = list(refs)
    for ax, t in zip(axes.flat, panels):
        for c in refs:
            style.draw_band(ax, c.band, style.method_color(c.method), style.variant_label(c.method, c.variant))
        if not math.isnan(t):
            for m in targeted:
                vs = variants_of(steps, m)
                for i, v in enumerate(vs):
                    c = curve(steps, m, t, value, variant=v)
                    if c:
                        drawn.append(c)
                        style.draw_band(ax, c.band, style.method_color(m), style.variant_label(m, v),
                                        linestyle=style.variant_linestyle(i))
            style.draw_target(ax, t)
            ax.set_title(f"target H* = {t:.2f} nats")
        if not ax.lines:
            style.empty_panel(ax, "no runs to show")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel(style.STEP_LABEL)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    handles: dict = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if targets:
        handles["target H*"] = plt.Line2D([], [], **{k: v for k, v in style.TARGET_LINE.items() if k != "zorder"})
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncol=min(len(handles), 3 if ncols == 1 else 6))
    fig.suptitle(f"{title}\n{seeds_note(drawn)}")
    return fig, axes, drawn
