"""The bang-bang controller and the AEPO batch assembly, alone."""

import pytest
import torch

from aepo.core.assembly import assemble_aepo_batch
from aepo.core.controller import BangBangConfig, BangBangController, constant


def bang(target=0.5, t_high=1.5, t_low=0.8):
    return BangBangController(BangBangConfig(constant(target), t_high, t_low))


def test_controller_raises_temperature_below_target():
    c = bang()
    d = c.update(0.3)
    assert d.temperature == 1.5 and d.raising


def test_controller_lowers_temperature_at_or_above_target():
    c = bang()
    assert c.update(0.5).temperature == 0.8
    assert c.update(0.9).temperature == 0.8 and not c.decision.raising


def test_controller_raises_before_any_measurement():
    assert bang(0.5, 1.2, 0.8).decision.temperature == 1.2


def test_controller_state_round_trips():
    a = bang()
    a.update(0.7)
    b = bang()
    b.load_state_dict(a.state_dict())
    assert b.decision == a.decision and b.last_entropy == 0.7


# main: 2 groups of G = 4 (8 rows); extra: 2 groups of 4
MAIN_ADV = torch.arange(8, dtype=torch.float) / 10
# extra group 0: rows 8..11 rewards (1, 0, 1, 0) -> rows 8 and 10 kept;
# extra group 1: all right -> zero advantage -> none kept
EXTRA_R = torch.tensor([1.0, 0, 1, 0, 1, 1, 1, 1])


def test_replace_mode_swaps_first_k_main_rows_for_kept_rows_with_advantage_one():
    s = assemble_aepo_batch(MAIN_ADV, EXTRA_R, 4, "replace", k_max=5, raising=True)
    assert s.num_kept == 2 and s.num_used == 2
    assert s.rows.tolist() == [8, 10, 2, 3, 4, 5, 6, 7]
    assert torch.allclose(s.advantages, torch.tensor([1, 1, .2, .3, .4, .5, .6, .7]))
    assert not s.reinforce.any()


def test_replace_mode_caps_at_k_and_halves_when_lowering():
    s = assemble_aepo_batch(MAIN_ADV, EXTRA_R, 4, "replace", k_max=1, raising=True)
    assert s.rows.tolist()[:2] == [8, 1]
    s = assemble_aepo_batch(MAIN_ADV, EXTRA_R, 4, "replace", k_max=5, raising=False)
    assert s.num_used == 1 and s.rows.tolist()[:2] == [8, 1]  # min(5, 2) // 2 = 1


def test_add_mode_appends_kept_rows_flagged_for_reinforce():
    s = assemble_aepo_batch(MAIN_ADV, EXTRA_R, 4, "add", k_max=0, raising=True)
    assert s.rows.tolist() == list(range(8)) + [8, 10]
    assert s.reinforce.tolist() == [False] * 8 + [True, True]
    assert s.advantages[-2:].tolist() == [1.0, 1.0]


def test_with_negatives_keeps_grpo_advantages_of_all_nonuniform_extra_rows():
    s = assemble_aepo_batch(MAIN_ADV, EXTRA_R, 4, "add", k_max=0, raising=True, keep_negatives=True)
    assert s.rows.tolist()[8:] == [8, 9, 10, 11]
    assert (s.advantages[8:] < 0).sum() == 2 and (s.advantages[8:] > 0).sum() == 2


def test_a_step_with_no_kept_sample_is_plain_grpo():
    s = assemble_aepo_batch(MAIN_ADV, torch.zeros(8), 4, "replace", k_max=5, raising=True)
    assert s.num_used == 0 and s.rows.tolist() == list(range(8))
    assert s.metrics()["controller/no_sample"] == 1.0
    s = assemble_aepo_batch(MAIN_ADV, torch.zeros(0), 4, "add", k_max=5, raising=True)
    assert s.rows.tolist() == list(range(8))


# ---- the `pi` controller (pi_alpha's law within the budget) and the entropy_adaptive coefficient -------
from aepo.config import AlgoConfig  # noqa: E402
from aepo.core.controller import AdaptiveCoefConfig, AdaptiveEntropyCoef, build_controller  # noqa: E402
from aepo.methods import METHODS  # noqa: E402


def pi(target=0.5, k_p=2.0, k_i=0.05, saturation_steps=50):
    algo = AlgoConfig(controller="pi", entropy_target=target, t_high=1.5, t_low=0.8, pi_kp=k_p, pi_ki=k_i,
                      saturation_steps=saturation_steps)
    return build_controller(METHODS["aepo"], algo, 400)


def test_pi_steady_error_moves_the_integral_term():
    c = pi(k_p=1.0, k_i=0.1)
    for _ in range(3):
        d = c.update(0.4)  # e = +0.1 each step
    assert abs(c.integral - 0.03) < 1e-9
    assert abs(d.strength - (0.1 + 0.03)) < 1e-9 and d.raising and d.temperature == 1.5


def test_pi_controller_does_not_wind_up_through_an_overshoot():
    # issue 12.5: 60 steps far below the target, then above it. With the integral clamped to the
    # output range (the old law) it kept raising at 0.90, 0.79, 0.58 through the overshoot.
    c = pi(target=0.5)
    for _ in range(60):
        d = c.update(0.1)  # e = +0.4: v = 0.8 + I reaches the bound 1 when I = 0.2, then I freezes
    assert d.strength == 1.0 and c.integral == pytest.approx(0.2)
    first = c.update(0.55)  # e = -0.05: u = -0.1 + 0.1975
    assert first.strength == pytest.approx(0.0975) and first.raising
    assert not c.update(0.6).raising and not c.update(0.7).raising  # lowers from the next step on


def test_pi_on_target_with_no_history_uses_no_strength():
    assert pi().update(0.5).strength == 0.0


def test_pi_state_round_trips_through_a_checkpoint():
    a = pi()
    for h in (0.1, 0.2, 0.9):
        a.update(h)
    b = pi()
    b.load_state_dict(a.state_dict())
    assert b.update(0.3) == a.update(0.3) and b.integral == a.integral


def test_adaptive_coefficient_steps_toward_target_and_applies_only_below_it():
    c = AdaptiveEntropyCoef(AdaptiveCoefConfig(target=constant(0.2), delta=0.005))
    assert c.decision.entropy_coef == 0.0  # before any measurement: the coefficient starts at 0
    assert c.update(0.1).entropy_coef == 0.005 and c.update(0.1).entropy_coef == 0.01
    d = c.update(0.3)  # above target: the coefficient steps down and the bonus is off
    assert c.coef == 0.005 and d.entropy_coef == 0.0 and d.target == 0.2
    for _ in range(5):
        c.update(0.5)
    assert c.coef == 0.0  # lower bound
    assert d.temperature == 1.0 and d.strength == 0.0  # it samples nothing at T != 1
