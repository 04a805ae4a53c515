"""Interval estimates, IQM and the quadratic peak on inputs with known answers."""

import math

import numpy as np
import pandas as pd
import pytest

from analysis.stats import (aggregate, bootstrap_ci, curve_band, difference_ci, fit_quadratic, iqm, local_linear,
                            offsets_removed, smoothed_best_ci,
                            quadratic_peak)


def test_known_quadratic_gives_its_peak():
    # y = 3 - 2 (x - 0.6)^2: vertex (0.6, 3), concave, inside [0.2, 1.0]
    x = np.array([0.2, 0.4, 0.6, 0.8, 1.0])
    coef = fit_quadratic(x, 3 - 2 * (x - 0.6) ** 2)
    peak = quadratic_peak(coef, (0.2, 1.0))
    assert peak["x"] == pytest.approx(0.6) and peak["y"] == pytest.approx(3.0)
    assert peak["peak"]


def test_convex_or_monotone_fits_have_no_peak():
    x = np.array([0.2, 0.4, 0.6, 0.8])
    assert not quadratic_peak(fit_quadratic(x, (x - 0.5) ** 2), (0.2, 0.8))["peak"]  # a valley
    assert not quadratic_peak(fit_quadratic(x, -(x - 2.0) ** 2), (0.2, 0.8))["peak"]  # vertex outside
    assert not quadratic_peak(fit_quadratic(x, 2 * x + 1), (0.2, 0.8))["peak"]  # a line


def test_quadratic_needs_three_distinct_entropies():
    assert math.isnan(fit_quadratic([0.1, 0.1, 0.5], [1, 2, 3])[2])


def test_confidence_intervals_shrink_with_more_seeds():
    from statistics import NormalDist

    # n seeds spread like one N(0.5, 0.1) population (its n evenly spaced quantiles): the same
    # seed noise, only more of it; the width should fall about as 1 / sqrt(n)
    widths = []
    for n in (3, 10, 40):
        _, lo, hi = bootstrap_ci(0.5 + 0.1 * np.array([NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)]))
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < 0.5 * widths[0]


def test_a_single_seed_gets_no_interval():
    p, lo, hi = bootstrap_ci([0.7])
    assert p == 0.7 and math.isnan(lo) and math.isnan(hi)


def test_interval_contains_the_mean_and_is_reproducible():
    x = [0.2, 0.4, 0.5, 0.9]
    p, lo, hi = bootstrap_ci(x)
    assert lo <= p <= hi and bootstrap_ci(x) == (p, lo, hi)


def test_iqm_ignores_the_outer_quartiles():
    # 8 values: the middle four are 3, 4, 5, 6
    assert iqm([1, 2, 3, 4, 5, 6, 7, 1000]) == pytest.approx(4.5)
    # along an axis: (n_boot, n) rows
    assert np.allclose(iqm(np.array([[1, 2, 3, 4, 5, 6, 7, 1000], [0] * 8]), axis=-1), [4.5, 0])


def test_difference_of_well_separated_groups_excludes_zero():
    d, lo, hi = difference_ci([0.60, 0.61, 0.62], [0.50, 0.51, 0.52])
    assert d == pytest.approx(0.1) and lo > 0


def test_aggregate_uses_the_iqm_only_with_enough_runs():
    df = pd.DataFrame({"g": ["a"] * 3 + ["b"] * 10, "v": np.arange(13, dtype=float)})
    out = aggregate(df, ["g"], "v").set_index("g")
    assert out.loc["a", "stat"] == "mean" and out.loc["b", "stat"] == "iqm"
    assert out.loc["a", "n"] == 3


def test_curve_band_of_identical_runs_has_zero_width():
    steps = pd.DataFrame({"run_id": ["r1"] * 3 + ["r2"] * 3, "step": [1, 2, 3] * 2, "h": [1.0, 0.8, 0.6] * 2})
    band = curve_band(steps, "h")
    assert list(band["point"]) == [1.0, 0.8, 0.6]
    assert np.allclose(band["lo"], band["point"]) and np.allclose(band["hi"], band["point"])


def test_iqm_agrees_with_scipy_trim_mean():
    stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(0).normal(size=(4, 11))
    assert np.allclose(iqm(x, axis=-1), stats.trim_mean(x, 0.25, axis=-1))


def test_the_best_entropys_location_interval_is_one_point_when_one_condition_always_wins():
    from analysis.stats import best_location_ci

    scores = [np.array([0.10, 0.12, 0.11]), np.array([0.30, 0.32, 0.31]), np.array([0.20, 0.21, 0.22])]
    assert best_location_ci([0.2, 0.3, 0.4], scores) == (0.3, 0.3, 0.3)  # every resample: 0.30 best


def test_the_best_entropys_location_interval_spans_the_conditions_seed_noise_lets_win():
    from analysis.stats import best_location_ci

    # 0.3 and 0.4 overlap (one run each far off); 0.2 and 0.5 never come close
    scores = [np.array([0.0, 0.01, 0.02]), np.array([0.5, 0.52, 0.1]), np.array([0.45, 0.47, 0.46]),
              np.array([0.0, 0.0, 0.0])]
    point, lo, hi = best_location_ci([0.2, 0.3, 0.4, 0.5], scores)
    assert point == 0.4 and (lo, hi) == (0.3, 0.4)  # mean 0.373 at 0.3 < 0.46 at 0.4; resamples flip it
    assert math.isnan(best_location_ci([0.2, 0.3], [np.array([0.1]), np.array([0.2, 0.3])])[1])  # one run: no CI


def test_c3_evidence_gives_the_best_entropy_with_its_interval():
    from analysis.claims import THRESHOLDS, judge_all
    from analysis.load import frames
    from analysis.scores import primary_key
    from analysis.summary import run_table
    from analysis.synthetic import synthetic_study

    table = run_table(frames(synthetic_study(seeds=3, steps=30)), THRESHOLDS)  # accuracy peaks at H = 0.6
    c3 = {c.id: c for c in judge_all(table, primary_key(table))}["C3"]
    assert "best at achieved H" in c3.evidence
    loc = c3.evidence.split("best at achieved H ")[1].split(" nats")[0]  # 'x [lo, hi]'
    x, lo, hi = (float(v) for v in loc.replace("[", "").replace("]", "").replace(",", "").split())
    assert lo <= x <= hi and 0.45 <= x <= 0.8  # the synthetic peak's target (0.75 -> achieved ~0.6-0.75)


def test_conditions_that_all_score_the_same_have_no_best_location():
    from analysis.stats import best_location_ci

    assert all(math.isnan(v) for v in best_location_ci([0.2, 0.3], [np.zeros(3), np.zeros(3)]))


def test_offsets_removed_takes_away_a_seeds_constant_lead_and_nothing_else():
    x = np.array([0.2, 0.4, 0.6, 0.2, 0.4, 0.6])
    seed = np.array([0, 0, 0, 1, 1, 1])
    y = 1.0 - (x - 0.4) ** 2 + 3.0 * (seed == 1)  # seed 1 scores 3 more at every target
    np.testing.assert_allclose(offsets_removed(x, y, [seed]), 1.0 - (x - 0.4) ** 2, atol=1e-12)
    np.testing.assert_allclose(offsets_removed(x, y, []), y)  # no factor: unchanged


def test_local_linear_reproduces_a_straight_line_to_its_ends():
    x = np.array([0.2, 0.3, 0.5, 0.8])
    at = np.array([0.2, 0.25, 0.8])
    np.testing.assert_allclose(local_linear(x, 2.0 - 3.0 * x, at, bandwidth=0.1), 2.0 - 3.0 * at, atol=1e-12)


def test_the_smoothed_best_is_not_fooled_by_one_slow_seed_at_the_best_target():
    # targets 0.2..0.8 once each at seed 0 on a curve peaked at 0.5, and the peak once more at a seed
    # that is 10 points slow everywhere it ran (0.5 and 0.2): a per-target mean would put 0.5 behind 0.4
    xs = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.5, 0.2]
    seeds = [0, 0, 0, 0, 0, 0, 0, 1, 1]
    ys = [80 - 100 * (x - 0.5) ** 2 - 10 * s for x, s in zip(xs, seeds)]
    grid = np.round(np.arange(0.2, 0.81, 0.05), 10)
    point, lo, hi = smoothed_best_ci(xs, ys, run=range(9), factors=[seeds], grid=grid, bandwidth=0.15, n_boot=200)
    assert point == pytest.approx(0.5) and lo <= point <= hi
    means = {x: np.mean([y for x2, y in zip(xs, ys) if x2 == x]) for x in set(xs)}
    assert max(means, key=means.get) != 0.5  # what the per-target mean would have picked


def test_the_smoothed_best_stays_inside_the_measured_targets_and_needs_three():
    grid = np.round(np.arange(0.1, 1.21, 0.05), 10)
    point, _, _ = smoothed_best_ci([0.3, 0.4, 0.5], [1.0, 2.0, 3.0], run=[0, 1, 2], factors=[], grid=grid,
                                   bandwidth=0.2, n_boot=50)
    assert point == pytest.approx(0.5)  # rising to the last measured target: no extrapolation past it
    assert all(math.isnan(v) for v in smoothed_best_ci([0.3, 0.5, 0.3], [1, 2, 3], [0, 1, 2], [], grid, 0.2))
