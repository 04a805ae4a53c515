"""Control-quality metrics on hand-made entropy traces with known answers."""

import math

import numpy as np
import pytest

from analysis.control import band_width, control_metrics, entropy_trend, overshoot, settling_step


def test_run_sitting_exactly_on_target_has_zero_error_and_settles_at_step_0():
    steps = np.arange(1, 41)
    m = control_metrics(steps, np.full(40, 0.5), target=0.5, band=0.05)
    assert m["mae_2nd_half"] == 0.0
    assert m["in_band"] == 1.0 and m["in_band_2nd_half"] == 1.0
    assert m["settling_step"] == 0.0
    assert m["overshoot"] == 0.0


def test_error_is_averaged_over_the_second_half_only():
    # steps 1..10: the first half is far off (1.0), the second half (steps 6..10) is 0.1 above
    h = np.array([1.0] * 5 + [0.6] * 5)
    m = control_metrics(np.arange(1, 11), h, target=0.5, band=0.05)
    assert m["mae_2nd_half"] == pytest.approx(0.1)


def test_settling_step_is_the_last_step_outside_the_band():
    inside = np.array([False, True, False, True, True, True])
    assert settling_step(np.arange(1, 7), inside) == 3.0  # in band at every step after 3


def test_run_that_ends_outside_the_band_never_settles():
    assert math.isnan(settling_step(np.arange(1, 4), np.array([True, True, False])))


def test_in_band_fraction_counts_the_steps_within_the_band():
    h = np.array([0.5, 0.54, 0.56, 0.7])  # band 0.05 around 0.5: two of four inside
    assert control_metrics(np.arange(1, 5), h, 0.5, 0.05)["in_band"] == 0.5


def test_overshoot_is_the_excursion_past_the_target_after_the_first_crossing():
    # approach from below, cross at 0.6, peak 0.65: overshoot 0.15; the early 0.2 does not count
    assert overshoot(np.array([0.2, 0.4, 0.6, 0.65, 0.5]), 0.5) == pytest.approx(0.15)
    # approach from above: the dip below the target counts
    assert overshoot(np.array([1.0, 0.7, 0.42, 0.5]), 0.5) == pytest.approx(0.08)


def test_overshoot_is_zero_when_entropy_never_reaches_the_target():
    assert overshoot(np.array([0.9, 0.8, 0.7]), 0.5) == 0.0


def test_band_is_relative_to_the_target_with_a_floor_in_nats():
    assert band_width(1.0) == pytest.approx(0.2)
    assert band_width(0.1) == pytest.approx(0.05)


def test_entropy_that_halves_has_a_final_to_initial_ratio_of_one_half():
    h = np.array([1.0] * 5 + [0.75] * 10 + [0.5] * 5)
    t = entropy_trend(np.arange(1, 21), h, window=0.25)  # windows of 5 records
    assert t["h_initial"] == 1.0 and t["h_final"] == 0.5 and t["h_ratio"] == 0.5
    assert t["h_peak_ratio"] == 1.0
    assert t["h_achieved"] == pytest.approx(np.mean(h[10:]))


def test_jitter_of_a_steady_alternation_is_its_amplitude_and_of_a_ramp_is_zero():
    from analysis.control import jitter

    steps = np.arange(1, 201, dtype=float)
    # H* +- 0.03 step to step: the 21-record centred mean is H* +- 0.03/21, so |H - MA| ~ 0.03
    h = 0.5 + 0.03 * (-1.0) ** steps
    assert jitter(steps, h) == pytest.approx(0.03, abs=0.002)
    # a straight line equals its centred mean away from the ends; the ends add a little
    assert jitter(steps, 0.001 * steps) < 0.001


def test_a_scheduled_target_is_measured_step_by_step():
    # issue 17: the entropy follows a linear anneal 0.7 -> 0.4 exactly; against the constant start it would miss
    steps = np.arange(1, 101)
    target = 0.7 + (0.4 - 0.7) * (steps - 1) / 99
    m = control_metrics(steps, target.copy(), target, band_width(target))
    assert m["mae_2nd_half"] == pytest.approx(0.0) and m["in_band"] == 1.0
    off = control_metrics(steps, target.copy(), 0.7, band_width(0.7))
    assert off["mae_2nd_half"] > 0.1
