"""The pi_alpha controller (issue 8) alone, on hand-made entropy sequences."""

import json

import pytest

from aepo.config import AlgoConfig, ConfigError, RunConfig
from aepo.core.controller import PIAlphaConfig, PIAlphaController, build_controller, constant
from aepo.methods import METHODS


def make(**kw):
    args = dict(target=0.5, t_high=1.5, t_low=0.8, k_p=10.0, k_i=1.0, s_up=4.0, s_down=4.0, saturation_steps=3)
    args.update(kw)
    args["target"] = constant(args["target"])
    return PIAlphaController(PIAlphaConfig(**args))


def test_pi_alpha_steady_error_moves_the_integral_term():
    c = make()
    for _ in range(3):
        d = c.update(0.45)  # e = +0.05 each step: I = 3 * 1.0 * 0.05
    assert c.integral == pytest.approx(0.15)
    # u = k_p e + I = 0.5 + 0.15, below s_max: raising at T_high
    assert d.strength == pytest.approx(0.65) and d.raising and d.temperature == 1.5


def test_pi_alpha_goes_past_the_papers_budget_when_the_error_persists():
    c = make()
    for _ in range(40):
        d = c.update(0.4)  # e = +0.1: P gives 1.0, the integral adds 0.1 per step
    assert d.strength > 1.0  # more than the fixed switch's alpha


def test_pi_alpha_output_and_integral_respect_their_bounds():
    c = make()
    for _ in range(10):
        d = c.update(0.0)  # e = +0.5: k_p e = 5 > s_max = 4 at once
    assert d.strength == 4.0 and d.saturated and d.raising
    # anti-windup: with the output at its bound, the integral never moved
    assert c.integral == 0.0
    d = c.update(1.0)  # e = -0.5: at the lower bound, lowering at T_low
    assert d.strength == 4.0 and not d.raising and d.temperature == 0.8
    assert -4.0 <= c.integral <= 4.0


def test_pi_alpha_lowers_within_its_own_smaller_bound():
    c = make(s_down=1.0)
    for _ in range(5):
        d = c.update(1.0)  # e = -0.5: k_p e = -5, clipped at -s_down
    assert d.strength == 1.0 and not d.raising and d.temperature == 0.8 and d.saturated
    assert c.integral == 0.0  # anti-windup at the lower bound too
    for _ in range(5):
        d = c.update(0.0)  # e = +0.5: up to s_up
    assert d.strength == 4.0 and d.raising


def test_pi_alpha_saturation_needs_n_steps_in_a_row_or_most_of_a_longer_stretch():
    c = make(saturation_steps=10)
    flags = [c.update(0.0).saturated for _ in range(10)]  # e = +0.5: at s_up from the first step
    assert flags == [False] * 9 + [True]  # N steps in a row: flagged at the N-th, as a count would be
    c = make(saturation_steps=10)
    # at the bound 4 steps of 5, knocked off it by a small error every 5th step: a count of steps
    # in a row never reaches 10, the recent share does
    flags = [c.update(0.0 if i % 5 else 0.49).saturated for i in range(60)]
    assert any(flags[20:]) and not any(flags[:9])
    c = make(saturation_steps=10)
    flags = [c.update(0.0 if i % 2 else 0.49).saturated for i in range(200)]  # at the bound half the time
    assert not any(flags)


def test_pi_alpha_integral_is_clamped_at_s_max():
    c = make(k_p=0.0, k_i=10.0)
    for _ in range(20):
        c.update(0.0)  # e = +0.5: I would reach 100 without the clamp
    assert c.integral <= 4.0 and c.decision.strength == 4.0


def test_pi_alpha_unwinds_as_soon_as_the_error_changes_sign():
    c = make(k_p=1.0, k_i=1.0)
    for _ in range(4):
        c.update(0.0)  # I: 0.5, 1.0, 1.5, 2.0 (u = 0.5 + I stays below 4)
    assert c.integral == pytest.approx(2.0)
    d = c.update(0.7)  # e = -0.2: I = 1.8, u = -0.2 + 1.8 = 1.6, still raising but less
    assert c.integral == pytest.approx(1.8) and d.strength == pytest.approx(1.6) and d.raising


def test_pi_alpha_raises_at_budget_before_any_measurement():
    d = make().decision
    assert d.raising and d.strength == 1.0 and d.temperature == 1.5


def test_pi_alpha_state_round_trips_through_a_checkpoint():
    a = make()
    for h in (0.1, 0.2, 0.9, 0.45):
        a.update(h)
    b = make()
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))  # as the checkpoint stores it
    assert b.integral == a.integral and b.decision == a.decision
    for h in (0.3, 0.6, 0.0):
        assert b.update(h) == a.update(h)


def test_pi_alpha_is_built_from_the_config_with_its_gains():
    algo = AlgoConfig(controller="pi_alpha", entropy_target=0.3, alpha_kp=7.0, alpha_ki=0.5, alpha_max_scale=3.0)
    c = build_controller(METHODS["aepo"], algo, 400)
    assert isinstance(c, PIAlphaController)
    assert (c.cfg.target.at(1), c.cfg.k_p, c.cfg.k_i, c.cfg.s_up, c.cfg.s_down) == (0.3, 7.0, 0.5, 3.0, 1.0)
    assert c.decision.target == 0.3  # every decision carries its target


@pytest.mark.parametrize("key,value", [("algo.alpha_max_scale", 0.5), ("algo.alpha_max_scale_lowering", 0.0),
                                       ("algo.alpha_max_scale_lowering", 9.0)])
def test_pi_alpha_bounds_outside_their_range_are_refused(key, value):
    with pytest.raises(ConfigError, match="alpha_max_scale"):
        RunConfig().with_overrides({key: value}).validate()
