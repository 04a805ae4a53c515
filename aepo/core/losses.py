"""Policy losses. Every method's loss has one signature and returns (loss, metrics).

    loss_fn(batch: LossBatch, cfg: LossConfig) -> (scalar loss, dict of floats)

`LOSSES` maps loss names to them; aepo/methods.py says which loss each method uses, so
trainers never branch on a method name.
"""

from __future__ import annotations

import torch

from aepo.core.advantages import entropy_shaped_advantages
from aepo.core import peer_losses as peer
from aepo.core.entropy import masked_mean
from aepo.core.policy import (LossBatch, LossConfig, agg_loss, ppo_clip_loss,  # noqa: F401 (re-exported)
                               reinforce_loss, token_advantages)


def grpo_loss(batch: LossBatch, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """GRPO: PPO-clip on group-normalised advantages, no KL (arXiv 2510.08141 Sec. 2)."""
    return ppo_clip_loss(batch.log_prob, batch.old_log_prob, token_advantages(batch), batch.mask,
                         cfg.clip_eps, cfg.agg_mode, batch.main_denom, cfg.dual_clip_c)


def entropy_reg_loss(batch: LossBatch, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Entropy-Reg baseline: L_GRPO - lambda * H (paper Sec. 5, lambda = 0.03)."""
    loss, metrics = grpo_loss(batch, cfg)
    entropy = agg_loss(batch.token_entropy, batch.mask, cfg.agg_mode, batch.main_denom)
    # L = L_GRPO - lambda * H(pi_theta)
    loss = loss - cfg.entropy_coef * entropy
    metrics["actor/entropy_loss"] = entropy.item()
    return loss, metrics


def entropy_adv_loss(batch: LossBatch, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Entropy-Adv baseline: PPO-clip on A + min(beta * sg[H_t], |A| / kappa) (Cheng et al. 2025)."""
    adv = entropy_shaped_advantages(token_advantages(batch), batch.token_entropy, cfg.adv_beta, cfg.adv_kappa)
    loss, metrics = ppo_clip_loss(batch.log_prob, batch.old_log_prob, adv, batch.mask,
                                  cfg.clip_eps, cfg.agg_mode, batch.main_denom, cfg.dual_clip_c)
    with torch.no_grad():
        metrics["actor/entropy_adv_bonus"] = masked_mean(adv - token_advantages(batch), batch.mask).item()
    return loss, metrics


def aepo_loss(batch: LossBatch, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """AEPO, arXiv 2510.08141, Eq. 2.

    replace mode: the kept temperature samples were spliced into the batch with advantage 1,
    no row is flagged `reinforce`, and this is PPO-clip on the spliced batch (reference code).
    add mode: GRPO on the main rows plus alpha times REINFORCE on the flagged rows (all carry
    R = 1; in the with-negatives ablation their GRPO advantage), divided by
    `batch.reinforce_denom`: every temperature sample (the estimator of Eq. 2, right or wrong)
    or the kept ones (`algo.reinforce_norm`).
    """
    main = ~batch.reinforce
    loss, metrics = ppo_clip_loss(batch.log_prob[main], batch.old_log_prob[main],
                                  token_advantages(batch)[main], batch.mask[main], cfg.clip_eps, cfg.agg_mode,
                                  batch.main_denom, cfg.dual_clip_c)
    if batch.reinforce.any():
        rf = batch.reinforce
        # grad J_AEPO = grad J_GRPO + alpha * E_{o ~ pi^T} sum_t grad log pi_theta(o_t) R(q, o)
        rl = reinforce_loss(batch.log_prob[rf], token_advantages(batch)[rf], batch.mask[rf], cfg.agg_mode,
                            batch.reinforce_denom)
        loss = loss + cfg.alpha * rl
        metrics["actor/reinforce_loss"] = rl.item()
    return loss, metrics


LOSSES = {
    "grpo": grpo_loss,
    "entropy_reg": entropy_reg_loss,
    "entropy_adv": entropy_adv_loss,
    "aepo": aepo_loss,
    # the other entropy-control methods (aepo/core/peer_losses.py)
    "clip_higher": peer.clip_higher_loss,
    "clip_cov": peer.clip_cov_loss,
    "kl_cov": peer.kl_cov_loss,
    "entropic": peer.entropic_loss,
}
