"""avg@K and unbiased pass@k on hand-computed cases."""

import math

import pytest

from aepo.eval.metrics import average, ks_for, pass_at_k, score


def test_pass_at_k_matches_the_binomial_formula():
    # n = 5 samples, c = 2 right, k = 2: 1 - C(3, 2) / C(5, 2) = 1 - 3/10
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    for n, c, k in [(10, 3, 4), (16, 1, 8), (7, 0, 3), (20, 19, 5)]:
        assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))


def test_pass_at_1_is_the_fraction_right_and_pass_at_n_is_any_right():
    assert pass_at_k(8, 3, 1) == pytest.approx(3 / 8)
    assert pass_at_k(8, 1, 8) == 1.0
    assert pass_at_k(8, 0, 8) == 0.0


def test_pass_at_k_rejects_k_above_n():
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def test_reported_ks_are_powers_of_two_below_n_and_n():
    assert ks_for(1) == [1]
    assert ks_for(4) == [1, 2, 4]
    assert ks_for(6) == [1, 2, 4, 6]


def test_score_averages_per_problem_fractions():
    # problem a: 1 of 4 right, problem b: 4 of 4 right -> avg@4 = (0.25 + 1) / 2
    s = score({"a": [True, False, False, False], "b": [True] * 4}, timeouts=1)
    assert s["n"] == 2 and s["samples"] == 4 and s["timeouts"] == 1
    assert s["accuracy"] == s["avg@4"] == pytest.approx(0.625)
    assert s["pass@4"] == 1.0
    # pass@2 of a: 1 - C(3, 2) / C(4, 2) = 0.5; of b: 1
    assert s["pass@2"] == pytest.approx(0.75)


def test_greedy_score_is_plain_accuracy():
    s = score({"a": [True], "b": [False], "c": [True]})
    assert s["accuracy"] == pytest.approx(2 / 3) and s["pass@1"] == pytest.approx(2 / 3)


def test_average_is_unweighted_over_benchmarks_and_skips_counts():
    avg = average({"x": score({"a": [True]}), "y": score({"a": [False], "b": [False]})})
    assert avg["accuracy"] == pytest.approx(0.5)
    assert "n" not in avg and "timeouts" not in avg
