"""Interval estimates over seeds: percentile bootstrap CIs, IQM, per-step curve bands.

A result is a point estimate with a 95% interval over independent runs (seeds). One run gives
no interval (lo = hi = NaN): it is shown as what it is, never as a result with error bars.
All resampling uses a fixed-seed generator, so tables and verdicts are reproducible.

Runs from several starts (pretrained models; analysis.load's `start`) are two levels: with
`groups` (one start label per run) the bootstrap is hierarchical: resample the starts, then the
seeds within each chosen start, so an interval covers what another start would give, not only
another seed of the same ones.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

LEVEL = 0.95  # confidence level of every interval
N_BOOT = 2000  # bootstrap resamples
IQM_MIN_RUNS = 8  # below this the interquartile mean trims too little to differ from the mean
SEED = 0


def iqm(x: Sequence[float] | np.ndarray, axis: int = -1) -> np.ndarray | float:
    """Interquartile mean: the mean of the middle 50% of values, floor(n / 4) trimmed each side
    (the convention of scipy.stats.trim_mean(x, 0.25))."""
    a = np.sort(np.asarray(x, dtype=float), axis=axis)
    n = a.shape[axis]
    cut = n // 4
    return np.take(a, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def _stat_fn(stat: str) -> Callable[..., np.ndarray]:
    if stat == "mean":
        return lambda a, axis: np.mean(a, axis=axis)
    if stat == "iqm":
        return lambda a, axis: iqm(a, axis=axis)
    raise ValueError(f"unknown statistic '{stat}' (mean | iqm)")


def choose_stat(n: int) -> str:
    """'iqm' with enough runs to trim, else 'mean'."""
    return "iqm" if n >= IQM_MIN_RUNS else "mean"


def _clean(x, groups) -> tuple[np.ndarray, np.ndarray | None]:
    """Values as floats without NaNs, and their group labels (None: one level)."""
    a = np.asarray(x, dtype=float)
    ok = ~np.isnan(a)
    g = None if groups is None else np.asarray(groups, dtype=object)[ok]
    return a[ok], (g if g is not None and len(set(g)) > 1 else None)


def resample(a: np.ndarray, groups: np.ndarray | None, n_boot: int, rng: np.random.Generator) -> list[np.ndarray]:
    """n_boot bootstrap resamples of a: (n_boot, n) runs drawn with replacement; with groups, the
    groups drawn with replacement first, then the runs within each chosen group."""
    if groups is None:
        return list(a[rng.integers(0, a.size, (n_boot, a.size))])
    members = [np.flatnonzero(groups == g) for g in dict.fromkeys(groups)]
    out = []
    for _ in range(n_boot):
        chosen = [members[i] for i in rng.integers(0, len(members), len(members))]
        out.append(a[np.concatenate([m[rng.integers(0, m.size, m.size)] for m in chosen])])
    return out


def bootstrap_ci(x: Sequence[float] | np.ndarray, stat: str = "mean", level: float = LEVEL,
                 n_boot: int = N_BOOT, seed: int = SEED, groups=None) -> tuple[float, float, float]:
    """(point, lo, hi): the statistic of the runs and its percentile bootstrap interval.

    x: (n,) one value per run; NaNs are dropped. n = 0 gives NaNs; n = 1 gives (x, NaN, NaN).
    groups: (n,) the start of each run, for the hierarchical bootstrap (module docstring)."""
    a, g = _clean(x, groups)
    if a.size == 0:
        return (np.nan, np.nan, np.nan)
    f = _stat_fn(stat)
    point = float(f(a, axis=-1))
    if a.size == 1:
        return (point, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    boots = np.array([f(r, axis=-1) for r in resample(a, g, n_boot, rng)])  # (n_boot,)
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return (point, float(lo), float(hi))


def interval(x: Sequence[float] | np.ndarray, level: float = LEVEL, groups=None) -> tuple[float, float, float]:
    """bootstrap_ci with the statistic that fits the number of runs: IQM from IQM_MIN_RUNS on,
    the mean below (the IQM of 3 runs would drop none or all but one)."""
    a = np.asarray(x, dtype=float)
    return bootstrap_ci(a, choose_stat(int((~np.isnan(a)).sum())), level, groups=groups)


def starts_of(frame: pd.DataFrame):
    """The `start` column of a run table (the groups of the hierarchical bootstrap), or None."""
    return frame["start"].to_numpy() if "start" in frame else None


def ci(frame: pd.DataFrame, column: str, level: float = LEVEL) -> tuple[float, float, float]:
    """`interval` of one column of a run table, hierarchical over its starts when it has several."""
    return interval(frame[column], level, starts_of(frame))


def difference_ci(a: Sequence[float], b: Sequence[float], level: float = LEVEL,
                  n_boot: int = N_BOOT, seed: int = SEED, groups_a=None, groups_b=None) -> tuple[float, float, float]:
    """(mean(a) - mean(b), lo, hi): independent-samples bootstrap of a difference of means (each
    side hierarchical over its starts when groups are given). Needs >= 2 runs a side for an interval."""
    x, gx = _clean(a, groups_a)
    y, gy = _clean(b, groups_b)
    if x.size == 0 or y.size == 0:
        return (np.nan, np.nan, np.nan)
    point = float(x.mean() - y.mean())
    if x.size < 2 or y.size < 2:
        return (point, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    d = (np.array([r.mean() for r in resample(x, gx, n_boot, rng)])
         - np.array([r.mean() for r in resample(y, gy, n_boot, rng)]))  # (n_boot,)
    lo, hi = np.quantile(d, [(1 - level) / 2, (1 + level) / 2])
    return (point, float(lo), float(hi))


def aggregate(frame: pd.DataFrame, by: Sequence[str], value: str, stat: str = "auto",
              level: float = LEVEL) -> pd.DataFrame:
    """One row per group of `by`: n (runs with a value), stat ('mean' | 'iqm'), point, lo, hi.

    frame: one row per run. stat 'auto' picks IQM for groups of >= IQM_MIN_RUNS runs."""
    rows = []
    for key, g in frame.groupby(list(by), dropna=False, sort=True):
        v = g[value].dropna().to_numpy(dtype=float)
        s = choose_stat(v.size) if stat == "auto" else stat
        point, lo, hi = bootstrap_ci(v, s, level)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "n": v.size, "stat": s, "point": point, "lo": lo, "hi": hi})
    return pd.DataFrame(rows, columns=[*by, "n", "stat", "point", "lo", "hi"])


def curve_band(steps: pd.DataFrame, value: str, level: float = LEVEL, n_boot: int = 1000,
               seed: int = SEED) -> pd.DataFrame:
    """Mean over runs at each step with a bootstrap band: columns step, n, point, lo, hi.

    steps: one row per run and step for ONE condition (columns run_id, step, value; `start` too
    when the runs come from several starts). Runs are resampled whole (the same resample at every
    step), hierarchically over starts, so the band is over seeds (and starts), not steps."""
    wide = steps.pivot_table(index="step", columns="run_id", values=value, aggfunc="mean")  # (S, n)
    m = wide.to_numpy(dtype=float)
    n = (~np.isnan(m)).sum(1)
    groups = None
    if "start" in steps:
        start_of = steps.drop_duplicates("run_id").set_index("run_id")["start"]
        groups = start_of.reindex(wide.columns).to_numpy(dtype=object)
        groups = groups if len(set(groups)) > 1 else None
    with np.errstate(all="ignore"):
        point = np.nanmean(m, 1)
        lo = hi = np.full(len(wide), np.nan)
        if m.shape[1] >= 2:
            rng = np.random.default_rng(seed)
            cols = resample(np.arange(m.shape[1]), groups, n_boot, rng)  # run indices per resample
            boots = np.stack([np.nanmean(m[:, c], axis=1) for c in cols], axis=1)  # (S, n_boot)
            lo, hi = np.nanquantile(boots, [(1 - level) / 2, (1 + level) / 2], axis=1)
            lo, hi = np.where(n >= 2, lo, np.nan), np.where(n >= 2, hi, np.nan)
    return pd.DataFrame({"step": wide.index.to_numpy(), "n": n, "point": point, "lo": lo, "hi": hi})


def fit_quadratic(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float]:
    """Least-squares (a, b, c) of y = a + b x + c x^2; NaNs if fewer than 3 distinct x."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = ~(np.isnan(xa) | np.isnan(ya))
    xa, ya = xa[ok], ya[ok]
    if np.unique(xa).size < 3:
        return (np.nan, np.nan, np.nan)
    c, b, a = np.polyfit(xa, ya, 2)
    return (float(a), float(b), float(c))


def quadratic_peak(coef: tuple[float, float, float], x_range: tuple[float, float]) -> dict[str, float | bool]:
    """Vertex of a fitted quadratic and whether it is a peak inside x_range.

    Returns x, y (the vertex, NaN for a straight line), concave (c < 0), interior (vertex strictly
    inside x_range) and peak (concave and interior: the fit rises, peaks and falls)."""
    a, b, c = coef
    if np.isnan(c) or abs(c) <= 1e-9 * (abs(a) + abs(b) + 1.0):  # a line, up to rounding
        return {"x": np.nan, "y": np.nan, "concave": False, "interior": False, "peak": False}
    xv = -b / (2 * c)
    interior = bool(x_range[0] < xv < x_range[1])
    return {"x": float(xv), "y": float(a + b * xv + c * xv**2), "concave": bool(c < 0),
            "interior": interior, "peak": bool(c < 0 and interior)}


def best_location_ci(xs: Sequence[float], scores: Sequence[np.ndarray], groups: Sequence[np.ndarray | None] | None = None,
                     level: float = LEVEL, n_boot: int = N_BOOT, seed: int = SEED) -> tuple[float, float, float]:
    """Where the score is best, with a percentile bootstrap interval: (x at the best mean, lo, hi).

    xs: (m,) the conditions' positions (e.g. achieved entropy per target); scores: m arrays of
    per-run scores; groups: each array's starts (hierarchical resampling, as bootstrap_ci). Each
    resample redraws every condition's runs and takes the x of the best mean (ties: the first),
    so the interval spans the grid points that could be best with other seeds. A condition with
    fewer than 2 runs gives NaN bounds; conditions that all score the same give NaN (no best)."""
    x = np.asarray(xs, dtype=float)
    arrays = [np.asarray(s, dtype=float) for s in scores]
    if not arrays or any(a.size == 0 for a in arrays):
        return (np.nan, np.nan, np.nan)
    means = [a.mean() for a in arrays]
    if max(means) == min(means):  # every condition scores the same (say 0): no best to locate
        return (np.nan, np.nan, np.nan)
    point = float(x[int(np.argmax(means))])
    if any(a.size < 2 for a in arrays):
        return (point, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    groups = list(groups) if groups is not None else [None] * len(arrays)
    means = np.stack([np.asarray([r.mean() for r in resample(a, g, n_boot, rng)]) for a, g in zip(arrays, groups)])
    best = x[np.argmax(means, axis=0)]  # (n_boot,)
    lo = np.quantile(best, (1 - level) / 2, method="lower")  # bounds on grid points
    hi = np.quantile(best, (1 + level) / 2, method="higher")
    return (point, float(lo), float(hi))


def offsets_removed(x: np.ndarray, y: np.ndarray, factors: Sequence[np.ndarray]) -> np.ndarray:
    """y less the offsets of categorical factors (seed, validation step), fitted jointly with a
    quadratic in x:  y_i = a + b x_i + c x_i^2 + sum_f d_f[level_f(i)] + e_i  (first level 0).
    x, y: (n,); factors: each (n,) labels. A seed that learns slowly at every target, or the step
    a value was read at, no longer counts for or against the targets it ran."""
    cols, dummies = [np.ones_like(x), x, x**2], []
    for f in factors:
        dummies += [(f == v).astype(float) for v in list(dict.fromkeys(f.tolist()))[1:]]
    if not dummies:
        return y
    coef = np.linalg.lstsq(np.stack(cols + dummies, axis=1), y, rcond=None)[0]
    return y - np.stack(dummies, axis=1) @ coef[3:]


def local_linear(x: np.ndarray, y: np.ndarray, at: np.ndarray, bandwidth: float) -> np.ndarray:
    """Gaussian-kernel local-linear regression of y on x, evaluated at each point of `at`:
    the intercept of  min_{a,b} sum_i K((x_i - p)/bandwidth) (y_i - a - b (x_i - p))^2.
    Unlike a kernel mean it is not pulled inwards at the ends of the range."""
    out = np.empty(at.size)
    for j, p in enumerate(at):
        w = np.exp(-0.5 * ((x - p) / bandwidth) ** 2)
        X = np.stack([np.ones_like(x), x - p], axis=1)
        out[j] = np.linalg.lstsq(X * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0][0]
    return out


def smoothed_best_ci(x: Sequence[float], y: Sequence[float], run: Sequence, factors: Sequence[Sequence],
                     grid: Sequence[float], bandwidth: float, level: float = LEVEL, n_boot: int = N_BOOT,
                     seed: int = SEED) -> tuple[float, float, float]:
    """Where a smooth curve through every run's scores is best, with a bootstrap interval over runs:
    (the grid point where the curve is highest, lo, hi).

    x, y, run: (n,) one entry per score read (a run may give several: its validation steps); factors:
    categorical labels per entry whose offsets are removed first (offsets_removed: seed, step), then
    the scores are smoothed over x (local_linear) and the best of the grid points inside the range
    of x is taken (no extrapolation). Pooling neighbouring targets is what lets a search with one run
    at most targets locate the best: a per-target mean of one run carries that run's whole noise. A
    resample redraws whole runs with replacement (one with fewer than 3 distinct x is skipped).
    NaNs: scores at fewer than 3 distinct x."""
    xa, ya, ra = np.asarray(x, dtype=float), np.asarray(y, dtype=float), np.asarray(run, dtype=object)
    fs = [np.asarray(f, dtype=object) for f in factors]
    g = np.asarray(grid, dtype=float)

    def best(idx: np.ndarray) -> float:
        xs = xa[idx]
        if np.unique(xs).size < 3:
            return np.nan
        at = g[(g >= xs.min() - 1e-9) & (g <= xs.max() + 1e-9)]
        curve = local_linear(xs, offsets_removed(xs, ya[idx], [f[idx] for f in fs]), at, bandwidth)
        return float(at[int(np.argmax(curve))])  # the first of tied points

    point = best(np.arange(xa.size))
    if np.isnan(point):
        return (np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(ra == r) for r in dict.fromkeys(ra.tolist())]
    boots = np.array([best(np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))]))
                      for _ in range(n_boot)])
    boots = boots[~np.isnan(boots)]
    lo = np.quantile(boots, (1 - level) / 2, method="lower")
    hi = np.quantile(boots, (1 + level) / 2, method="higher")
    return (point, float(lo), float(hi))
