"""How well a run's entropy follows its target, and how its entropy moves over training.

Control quality of one run (arXiv 2510.08141 shows it by eye in Fig. 1; here it is measured),
with H the exact batch entropy `actor/entropy` (nats) and H* the target:
H* is the target in force at each step (`controller/target`; a schedule moves it), else the run's
constant target.
- `mae_2nd_half`: mean |H - H*| over the records of the second half of training
  (step > last step / 2), nats;
- `in_band`: fraction of all records with |H - H*| <= band (`band_width`: max(0.2 H*, 0.05 nats));
  `in_band_2nd_half` likewise;
- `iae`: the integrated absolute error over the whole run, sum over records of |H - H*| (nats x
  steps): what the first approach costs as well as what the second half leaves;
- `settling_step`: the first step s >= 0 after which every record stays in the band
  (0: in band from the first record; NaN: the last record is out of band, never settled);
- `overshoot`: the largest excursion past H* on the far side from where H started, after H
  first reaches H* (0 if it never crosses), nats.
- `jitter_2nd_half`: mean |H - MA(H)| over the second half, MA a centred moving average over
  JITTER_WINDOW records (shrunk at the ends): the step-to-step fluctuation of the measured
  entropy (sampling noise plus each update's kick). A controller that acts once per step on
  the slow part cannot remove it, so it is a floor under `mae_2nd_half`, nats.

Cost and reach of any run: `step_time_s` is the mean of `timing_s/step` (seconds per RL step,
validation excluded); `saturated` is 1 when the controller flagged `controller/saturated` at
any step of the second half (the target looked out of reach with its bounds; a flag raised
only during the first approach does not count), 0 when it never did, NaN when the run did not
log the key.

Entropy trend of any run (targets or not): `h_initial` and `h_final` are means over the first
and last `window` fraction of records, `h_ratio` = h_final / h_initial, `h_peak_ratio` =
max H / h_initial, `h_achieved` = mean H over the second half (the x of accuracy-vs-entropy).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

ENTROPY = "actor/entropy"
TARGET = "controller/target"  # the target in force at each step (a schedule moves it)
STEP_TIME = "timing_s/step"
JITTER_WINDOW = 21  # records; ~ the closed-loop time constant of the pi_alpha controller
SATURATED = "controller/saturated"


# The one definition of "in band" (results.parquet, tables, claims): +-20% of H*, but at least
# +-0.05 nats (a fixed +-0.05 is tight at H* = 1 and loose at H* = 0.1).
BAND_REL = 0.2
BAND_MIN = 0.05


def band_width(target):
    """Half-width of the band around a target: BAND_REL * H*, but at least BAND_MIN nats (a
    number, or one per step for a scheduled target)."""
    if np.ndim(target):
        return np.maximum(BAND_REL * np.asarray(target, dtype=float), BAND_MIN)
    return max(BAND_REL * target, BAND_MIN)


def second_half(steps: np.ndarray) -> np.ndarray:
    """Mask of the records in the second half of training (step > last step / 2)."""
    return steps > steps.max() / 2


def settling_step(steps: np.ndarray, inside: np.ndarray) -> float:
    """First step s >= 0 such that every record after s is inside the band."""
    if not inside[-1]:
        return math.nan
    outside = np.flatnonzero(~inside)
    return 0.0 if outside.size == 0 else float(steps[outside[-1]])


def overshoot(h: np.ndarray, target) -> float:
    """Largest excursion beyond the target after the first crossing, on the side away from the
    start (approach from below: max(H - H*); from above: max(H* - H)); 0 if never crossed.
    target: a number, or (S,) per step for a scheduled target."""
    target = np.broadcast_to(np.asarray(target, dtype=float), h.shape)
    sign = 1.0 if h[0] < target[0] else -1.0
    past = sign * (h - target)  # > 0 once beyond the target
    crossed = np.flatnonzero(past >= 0)
    if crossed.size == 0:
        return 0.0
    return float(max(past[crossed[0]:].max(), 0.0))


def jitter(steps: np.ndarray, h: np.ndarray, window: int = JITTER_WINDOW) -> float:
    """Mean |H - centred moving average of H| over the second half. steps, h: (S,)."""
    if h.size == 0:
        return math.nan
    half = window // 2
    csum = np.concatenate([[0.0], np.cumsum(h)])
    lo = np.clip(np.arange(h.size) - half, 0, None)
    hi = np.clip(np.arange(h.size) + half + 1, None, h.size)
    ma = (csum[hi] - csum[lo]) / (hi - lo)
    return float(np.abs(h - ma)[second_half(steps)].mean())


def control_metrics(steps: np.ndarray, h: np.ndarray, target, band) -> dict[str, float]:
    """Control quality of one run. steps, h: (S,) records in step order; target, band in nats:
    numbers, or (S,) per step (a scheduled target: the error is against the target of each step)."""
    steps, h = np.asarray(steps, dtype=float), np.asarray(h, dtype=float)
    target = np.broadcast_to(np.asarray(target, dtype=float), h.shape)
    band = np.broadcast_to(np.asarray(band, dtype=float), h.shape)
    ok = ~np.isnan(h)
    steps, h, target, band = steps[ok], h[ok], target[ok], band[ok]
    if h.size == 0:
        return {k: math.nan for k in ("mae_2nd_half", "iae", "in_band", "in_band_2nd_half", "settling_step",
                                      "overshoot", "jitter_2nd_half")}
    err = np.abs(h - target)
    inside = err <= band + 1e-12
    late = second_half(steps)
    return {"mae_2nd_half": float(err[late].mean()), "iae": float(err.sum()), "in_band": float(inside.mean()),
            "in_band_2nd_half": float(inside[late].mean()), "settling_step": settling_step(steps, inside),
            "overshoot": overshoot(h, target), "jitter_2nd_half": jitter(steps, h)}


def entropy_trend(steps: np.ndarray, h: np.ndarray, window: float) -> dict[str, float]:
    """h_initial, h_final, h_ratio, h_peak_ratio, h_achieved of one run (see module docstring)."""
    steps, h = np.asarray(steps, dtype=float), np.asarray(h, dtype=float)
    ok = ~np.isnan(h)
    steps, h = steps[ok], h[ok]
    if h.size == 0:
        return {k: math.nan for k in ("h_initial", "h_final", "h_ratio", "h_peak_ratio", "h_achieved")}
    w = max(1, int(round(window * h.size)))
    h0, h1 = float(h[:w].mean()), float(h[-w:].mean())
    return {"h_initial": h0, "h_final": h1, "h_ratio": h1 / h0 if h0 > 0 else math.nan,
            "h_peak_ratio": float(h.max()) / h0 if h0 > 0 else math.nan,
            "h_achieved": float(h[second_half(steps)].mean())}


def late_max(g: pd.DataFrame, key: str) -> float:
    """Max of one metric over the second half of a run's records; NaN if never logged."""
    if key not in g or g[key].isna().all():
        return math.nan
    return float(g.loc[second_half(g["step"].to_numpy(dtype=float)), key].max())


def per_run(steps: pd.DataFrame, runs: pd.DataFrame, window: float) -> pd.DataFrame:
    """One row per run: the `runs` columns, the entropy trend, and (for runs with a target) the
    control metrics and `band` used."""
    rows = []
    for run_id, g in steps.groupby("run_id", sort=False):
        g = g.sort_values("step")
        s, h = g["step"].to_numpy(), g[ENTROPY].to_numpy(dtype=float) if ENTROPY in g else np.full(len(g), np.nan)
        row = {"run_id": run_id, **entropy_trend(s, h, window),
               "step_time_s": float(g[STEP_TIME].mean()) if STEP_TIME in g else math.nan,
               "saturated": late_max(g, SATURATED)}
        target = g["entropy_target"].iloc[0]
        if not pd.isna(target):
            per_step = g[TARGET].to_numpy(dtype=float) if TARGET in g else np.full(len(g), np.nan)
            tgt = np.where(np.isnan(per_step), float(target), per_step)  # the scheduled target where logged
            row.update(band=band_width(float(tgt[-1])), **control_metrics(s, h, tgt, band_width(tgt)))
        rows.append(row)
    out = runs.merge(pd.DataFrame(rows), on="run_id", how="left") if rows else runs.copy()
    for c in ("band", "mae_2nd_half", "iae", "in_band", "in_band_2nd_half", "settling_step", "overshoot",
              "jitter_2nd_half", "step_time_s", "saturated"):
        if c not in out:
            out[c] = np.nan
    return out
