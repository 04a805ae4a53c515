"""The other entropy-control methods (issue 17) on hand-computed tensors, their controllers on
hand-made entropy sequences, and target schedules."""

from __future__ import annotations

import math

import pytest
import torch

from aepo.core.controller import DeadbandConfig, DeadbandController, constant
from aepo.core.advantages import sign_filtered_advantages
from aepo.core.controller import EntroPICConfig, EntroPICController
from aepo.core.peer_losses import clip_cov_loss, clip_higher_loss, entropic_loss, kl_cov_loss
from aepo.core.policy import LossBatch, LossConfig
from aepo.schedule import Schedule, parse_points


def batch(log_prob, adv, old=None) -> LossBatch:
    lp = torch.tensor(log_prob, requires_grad=True)
    b = lp.shape[0]
    return LossBatch(lp, (lp.detach() if old is None else torch.tensor(old)), torch.tensor(adv), torch.ones_like(lp),
                     torch.zeros_like(lp), torch.zeros(b, dtype=torch.bool))


# ---- schedules -------------------------------------------------------------------------------------
def test_schedules_move_the_target_from_a_to_b_over_the_run():
    lin, cos = Schedule("linear", 0.7, 0.4, 301), Schedule("cosine", 0.7, 0.4, 301)
    assert lin.at(1) == pytest.approx(0.7) and lin.at(151) == pytest.approx(0.55) and lin.at(301) == pytest.approx(0.4)
    assert cos.at(1) == pytest.approx(0.7) and cos.at(151) == pytest.approx(0.55) and cos.at(301) == pytest.approx(0.4)
    assert cos.at(76) == pytest.approx(0.4 + 0.3 * (1 + math.cos(math.pi / 4)) / 2)  # slow start, unlike linear
    pw = Schedule("piecewise", 0.7, 0.7, 400, parse_points(["1:0.7", "201:0.5", "301:0.5", "401:0.45"]))
    assert [pw.at(s) for s in (1, 101, 201, 250, 351, 500)] == pytest.approx([0.7, 0.6, 0.5, 0.5, 0.475, 0.45])
    assert Schedule("constant", 0.3, 0.3, 400).at(123) == 0.3
    with pytest.raises(ValueError):
        parse_points(["10:0.5", "5:0.4"])


# ---- losses ------------------------------------------------------------------------------------------
def test_clip_higher_lets_a_positive_token_grow_past_the_symmetric_clip():
    # A = +1 and ratio 1.25: the symmetric clip at 0.2 caps the objective at 1.2, eps_high 0.28 does not
    b = batch([[math.log(1.25)]], [1.0], old=[[0.0]])
    sym, _ = clip_higher_loss(b, LossConfig(clip_eps=0.2, clip_eps_high=0.2))
    high, _ = clip_higher_loss(b, LossConfig(clip_eps=0.2, clip_eps_high=0.28))
    assert sym.item() == pytest.approx(-1.2) and high.item() == pytest.approx(-1.25)


def cov_batch():
    # A = (+2, -2) on 2 tokens each; log p = [[0, -2], [0, -3]]: means 0 and -1.25, so
    # Cov = A (log p + 1.25) = [[2.5, -1.5], [-2.5, 3.5]]
    return batch([[0.0, -2.0], [0.0, -3.0]], [2.0, -2.0], old=[[-0.1, -2.1], [-0.1, -3.1]])


def test_clip_cov_detaches_the_tokens_whose_covariance_lies_in_its_window():
    b = cov_batch()
    # window (1, 3): only token (0, 0) with Cov 2.5; a share of 1/4 of 4 tokens = 1 token detached
    loss, m = clip_cov_loss(b, LossConfig(clip_eps=0.2, cov_ratio=0.25, clip_cov_low=1.0, clip_cov_high=3.0,
                                          agg_mode="token-mean"))
    grad = torch.autograd.grad(loss, b.log_prob)[0]
    assert grad[0, 0] == 0 and (grad.flatten()[1:] != 0).all()
    assert m["actor/pg_clipfrac"] == pytest.approx(0.25)


def test_kl_cov_penalises_the_largest_covariance_token_with_the_abs_log_ratio():
    b = cov_batch()  # log ratio 0.1 everywhere; the largest Cov is token (1, 1)
    loss, _ = kl_cov_loss(b, LossConfig(cov_ratio=0.25, kl_cov_coef=0.1, agg_mode="token-mean"))
    r = math.exp(0.1)
    # token-mean of -A r over 4 tokens (2 of +2, 2 of -2 -> 0) plus 0.1 * 0.1 on one token
    assert loss.item() == pytest.approx((-2 * r * 2 + 2 * r * 2 + 0.1 * 0.1) / 4, abs=1e-6)


def test_entrocraft_reinforces_right_answers_above_the_band_and_penalises_wrong_ones_below():
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0])  # one group of 4; its GRPO advantages
    grpo = torch.tensor([0.5, -1.5, 0.5, 0.5])
    assert sign_filtered_advantages(rewards, grpo, +1).tolist() == [1, 0, 1, 1]  # RAFT++: right answers, R
    assert sign_filtered_advantages(rewards, grpo, -1).tolist() == [0, -1, 0, 0]  # NSR: wrong answers, R - 1
    assert sign_filtered_advantages(rewards, grpo, 0).tolist() == grpo.tolist()  # inside the band: GRPO


def test_entropic_adds_u_times_a_pg_term_on_the_high_probability_tokens_only():
    # token (0, 0) has p = 0.97 (> 0.95), the others p = 0.5; A = (+1, -1); on-policy: ratio 1
    lp = [[math.log(0.97), math.log(0.5)], [math.log(0.5), math.log(0.5)]]
    b = batch(lp, [1.0, -1.0])
    base, _ = entropic_loss(b, LossConfig(entropic_u=0.0, agg_mode="token-mean"))
    loss, m = entropic_loss(b, LossConfig(entropic_u=0.5, agg_mode="token-mean"))
    # the term: u * mean over the one high token of (-1 * |A|) = 0.5 * -1
    assert (loss - base).item() == pytest.approx(-0.5) and m["actor/entropic_high_share"] == pytest.approx(0.25)
    g_base = torch.autograd.grad(base, b.log_prob, retain_graph=True)[0]
    g = torch.autograd.grad(loss, b.log_prob)[0]
    delta = g - g_base
    assert delta[0, 0] == pytest.approx(-0.5) and (delta.flatten()[1:] == 0).all()  # only the high token moves


# ---- controllers -------------------------------------------------------------------------------------
def test_the_deadband_keeps_positives_above_negatives_below_and_all_inside():
    c = DeadbandController(DeadbandConfig(constant(0.5), width=0.1))
    assert c.decision.advantage_sign == 0  # before any measurement: every sample
    assert [c.update(h).advantage_sign for h in (0.62, 0.54, 0.46, 0.3)] == [1, 0, 0, -1]
    d = c.update(0.3)
    assert d.raising and d.temperature == 1.0 and d.metrics()["controller/advantage_sign"] == -1


def test_the_deadband_follows_an_annealed_target():
    c = DeadbandController(DeadbandConfig(Schedule("linear", 0.65, 0.45, 3), width=0.1))
    assert c.decision.target == pytest.approx(0.65)
    d = c.update(0.58)  # decision for step 2: target 0.55, band [0.5, 0.6] -> inside
    assert d.target == pytest.approx(0.55) and d.advantage_sign == 0
    d = c.update(0.58)  # step 3: target 0.45, band [0.4, 0.5] -> above: positives only
    assert d.target == pytest.approx(0.45) and d.advantage_sign == 1
    other = DeadbandController(DeadbandConfig(Schedule("linear", 0.65, 0.45, 3), width=0.1))
    other.load_state_dict(c.state_dict())
    assert other.decision == c.decision and other.t == 2


def test_entropic_pi_sharpens_above_the_target_spreads_below_and_integrates_without_a_clamp():
    c = EntroPICController(EntroPICConfig(constant(0.5), k_p=1.0, k_i=0.01))
    d = c.update(0.8)  # e = +0.3, I before = 0: u = 0.3
    assert d.entropic_u == pytest.approx(0.3) and not d.raising and c.integral == pytest.approx(0.3)
    for _ in range(200):
        d = c.update(2.0)  # e = +1.5 each step: u saturates at +1, the integral keeps growing (no anti-windup)
    assert d.entropic_u == 1.0 and d.saturated and c.integral == pytest.approx(0.3 + 300.0)
    d = c.update(0.4)  # e = -0.1, yet k_i I = 3.003 keeps u at +1: the code's windup, kept on purpose
    assert d.entropic_u == 1.0
    fresh = EntroPICController(EntroPICConfig(constant(0.5)))
    assert fresh.update(0.2).entropic_u == pytest.approx(-0.3) and fresh.decision.raising


# ---- AEPO's second lowering lever (issue 17.4) --------------------------------------------------------
def test_positive_only_lowering_keeps_right_answers_on_the_steps_the_law_lowers_and_nowhere_else():
    from aepo.config import AlgoConfig
    from aepo.core.controller import BangBangController, PositiveOnlyWhenLowering, build_controller
    from aepo.methods import METHODS

    algo = AlgoConfig(controller="bang_bang", entropy_target=0.5, lowering="positive_only")
    c = build_controller(METHODS["aepo"], algo, steps=10)
    assert isinstance(c, PositiveOnlyWhenLowering) and isinstance(c.law, BangBangController)
    assert c.decision.raising and c.decision.advantage_sign == 0  # before any measurement: raise, every sample
    decisions = [c.update(h) for h in (0.7, 0.4, 0.5, 0.49)]
    assert [d.advantage_sign for d in decisions] == [1, 0, 1, 0]  # H >= H*: T_low and right answers only
    assert [d.temperature for d in decisions] == [0.8, 1.5, 0.8, 1.5]  # the law's own decisions are kept
    assert decisions[0].metrics()["controller/advantage_sign"] == 1.0
    # the main batch's advantages on a lowering step: R, not GRPO's normalised R - mean
    rewards, grpo = torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.tensor([0.87, -0.87, 0.87, -0.87])
    assert sign_filtered_advantages(rewards, grpo, decisions[0].advantage_sign).tolist() == [1.0, 0.0, 1.0, 0.0]
    assert sign_filtered_advantages(rewards, grpo, decisions[1].advantage_sign).tolist() == pytest.approx(grpo.tolist())
    # resume: the law's state is the whole state, and the decision in force comes back marked
    other = build_controller(METHODS["aepo"], algo, steps=10)
    other.load_state_dict(c.state_dict())
    assert other.decision == c.decision
    c.update(0.9)
    other.update(0.9)
    assert other.decision == c.decision and other.decision.advantage_sign == 1


def test_the_lowering_lever_is_refused_for_a_method_without_an_aepo_controller():
    from aepo.config import ConfigError, RunConfig

    with pytest.raises(ConfigError, match="lowering=positive_only needs an AEPO controller"):
        RunConfig().with_overrides({"algo.method": "grpo", "algo.lowering": "positive_only"}).validate()
    with pytest.raises(ConfigError, match="unknown lowering 'sometimes'"):
        RunConfig().with_overrides({"algo.lowering": "sometimes"}).validate()


def test_an_embedded_run_with_the_lowering_lever_filters_exactly_on_its_lowering_steps(tmp_path):
    from aepo.config import RunConfig
    from aepo.embedded.trainer import train
    from aepo.rundir import read_jsonl

    cfg = RunConfig(out=str(tmp_path), steps=6, seed=0, wandb="off", eval_every=0, threads=1).with_overrides(
        {"algo.controller": "bang_bang", "algo.entropy_target": 0.9, "algo.lowering": "positive_only",
         "rollout.prompts_per_step": 4})
    train(cfg, log=lambda *a: None)
    rows = list(read_jsonl(tmp_path / "metrics.jsonl"))
    lowering = [r["controller/raising"] == 0.0 for r in rows]  # each row logs the decision its step ran under
    assert any(lowering) and not lowering[0]  # raise before any measurement; then ~1.1 nats sit above 0.9
    assert [r.get("controller/advantage_sign", 0.0) for r in rows] == [1.0 if low else 0.0 for low in lowering]
