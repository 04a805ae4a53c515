"""The core's math on hand-computed tensors."""

import math

import pytest
import torch

from aepo.core.advantages import entropy_shaped_advantages, grpo_advantages
from aepo.core.entropy import batch_entropy, entropy_from_logits, sampled_logprob_estimate
from aepo.core.losses import (LossBatch, LossConfig, aepo_loss, agg_loss, entropy_adv_loss,
                              entropy_reg_loss, grpo_loss, ppo_clip_loss)


def test_uniform_logits_have_entropy_log_v():
    logits = torch.zeros(2, 3, 7)
    assert torch.allclose(entropy_from_logits(logits), torch.full((2, 3), math.log(7)))


def test_one_hot_logits_have_zero_entropy():
    logits = torch.tensor([[1000.0, 0.0, 0.0]])
    assert entropy_from_logits(logits).item() == pytest.approx(0.0, abs=1e-6)


def test_two_token_entropy_matches_hand_value():
    # p = (0.75, 0.25): H = -(0.75 ln 0.75 + 0.25 ln 0.25) = 0.562335...
    logits = torch.log(torch.tensor([0.75, 0.25]))
    assert entropy_from_logits(logits).item() == pytest.approx(0.5623351446, rel=1e-6)


def test_batch_entropy_is_mean_of_per_response_means():
    # row 0 tokens (1, 3) -> 2; row 1 token (4) -> 4; batch = 3 (a token mean would give 8/3)
    h = torch.tensor([[1.0, 3.0], [4.0, 9.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    assert batch_entropy(h, mask).item() == pytest.approx(3.0)


def test_sampled_logprob_estimator_is_minus_mean_logprob():
    logp = torch.tensor([[-1.0, -3.0], [-2.0, 0.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    assert sampled_logprob_estimate(logp, mask).item() == pytest.approx(2.0)


def test_grpo_advantages_normalise_each_group_and_zero_uniform_groups():
    # group 0: rewards (1, 0, 0, 1): mean 0.5, unbiased std sqrt(1/3) -> +-0.8660
    # group 1 all right, group 2 all wrong -> 0
    r = torch.tensor([1.0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    adv = grpo_advantages(r, group_size=4)
    s = 0.5 / math.sqrt(1 / 3)
    assert torch.allclose(adv[:4], torch.tensor([s, -s, -s, s]), atol=1e-5)
    assert torch.equal(adv[4:], torch.zeros(8))


def test_entropy_shaped_advantage_is_clipped_by_abs_advantage_over_kappa():
    adv = torch.tensor([[1.0, 1.0, -1.0, 0.0]])
    h = torch.tensor([[0.5, 5.0, 5.0, 5.0]])
    # beta H = (0.2, 2, 2, 2); |A|/kappa = (0.5, 0.5, 0.5, 0)
    out = entropy_shaped_advantages(adv, h, beta=0.4, kappa=2.0)
    assert torch.allclose(out, torch.tensor([[1.2, 1.5, -0.5, 0.0]]))


def test_entropy_shaping_passes_no_gradient_through_entropy():
    h = torch.tensor([[0.5]], requires_grad=True)
    out = entropy_shaped_advantages(torch.tensor([[1.0]]), h, 0.4, 2.0)
    assert not out.requires_grad


def test_agg_modes_differ_as_documented():
    loss = torch.tensor([[1.0, 3.0], [4.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    assert agg_loss(loss, mask, "seq-mean-token-mean").item() == pytest.approx(3.0)  # (2 + 4) / 2
    assert agg_loss(loss, mask, "token-mean").item() == pytest.approx(8.0 / 3.0)


def test_ppo_clip_loss_clips_ratio_on_the_pessimistic_side():
    # A = 1, ratio e^0.5 = 1.6487 > 1.2: clipped loss -1.2; A = -1, ratio 1.6487: unclipped -(-1.6487)
    old = torch.zeros(2, 1)
    new = torch.full((2, 1), 0.5)
    adv = torch.tensor([[1.0], [-1.0]])
    mask = torch.ones(2, 1)
    loss, m = ppo_clip_loss(new, old, adv, mask, clip_eps=0.2, agg_mode="seq-mean-token-mean")
    assert loss.item() == pytest.approx((-1.2 + math.exp(0.5)) / 2, rel=1e-6)
    assert m["actor/pg_clipfrac"] == pytest.approx(0.5)


def test_on_policy_ppo_gradient_equals_reinforce_gradient():
    # ratio = 1 at old == new: grad of -A * ratio = -A * grad log p
    logp = torch.tensor([[-0.7, -1.2]], requires_grad=True)
    adv = torch.tensor([[2.0, 2.0]])
    loss, _ = ppo_clip_loss(logp, logp.detach(), adv, torch.ones(1, 2), 0.2, "seq-mean-token-mean")
    loss.backward()
    assert torch.allclose(logp.grad, torch.tensor([[-1.0, -1.0]]))  # -A / |o| per token


def _batch(reinforce=(False, False, True), adv=(1.0, -1.0, 1.0)):
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -0.5], [-3.0, -1.0]], requires_grad=True)
    return LossBatch(log_prob=logp, old_log_prob=logp.detach(), advantages=torch.tensor(adv),
                     mask=torch.ones(3, 2), token_entropy=torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
                     reinforce=torch.tensor(reinforce))


def test_aepo_add_mode_is_grpo_plus_alpha_times_reinforce():
    b = _batch()
    loss, m = aepo_loss(b, LossConfig(alpha=0.5))
    # GRPO on rows 0, 1 (ratio 1): -(1 - 1) / 2 = 0 in value; REINFORCE on row 2: -mean(-3, -1) = 2
    assert m["actor/reinforce_loss"] == pytest.approx(2.0)
    assert loss.item() == pytest.approx(0.0 + 0.5 * 2.0)
    loss.backward()
    # row 2 gradient: alpha * (-R / |o|) = -0.25 per token; row 0: -A/|o|/B_main = -0.25
    assert torch.allclose(b.log_prob.grad[2], torch.tensor([-0.25, -0.25]))
    assert torch.allclose(b.log_prob.grad[0], torch.tensor([-0.25, -0.25]))


def test_aepo_without_flagged_rows_is_exactly_grpo():
    b = _batch(reinforce=(False, False, False))
    l1, _ = aepo_loss(b, LossConfig(alpha=0.5))
    l2, _ = grpo_loss(b, LossConfig(alpha=0.5))
    assert l1.item() == pytest.approx(l2.item())


def test_entropy_reg_subtracts_lambda_times_entropy():
    b = _batch(reinforce=(False, False, False))
    base, _ = grpo_loss(b, LossConfig())
    loss, m = entropy_reg_loss(b, LossConfig(entropy_coef=0.03))
    # H = mean(1.5, 3.5, 5.5) = 3.5
    assert m["actor/entropy_loss"] == pytest.approx(3.5)
    assert loss.item() == pytest.approx(base.item() - 0.03 * 3.5)


def test_entropy_adv_raises_positive_advantages_only_within_bound():
    b = _batch(reinforce=(False, False, False), adv=(1.0, -1.0, 0.0))
    loss, m = entropy_adv_loss(b, LossConfig(adv_beta=0.4, adv_kappa=2.0))
    # shaped: row0 (1 + min(0.4, .5), 1 + min(0.8, .5)) = (1.4, 1.5); row1 (-1 + .5, -1 + .5); row2 0
    # on-policy loss value = -mean_rows(mean_t A) = -((1.45) + (-0.5) + 0) / 3
    assert loss.item() == pytest.approx(-(1.45 - 0.5) / 3, rel=1e-6)
    assert m["actor/entropy_adv_bonus"] == pytest.approx((0.4 + 0.5 + 0.5 + 0.5) / 6, rel=1e-6)
