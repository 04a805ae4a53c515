"""Policy losses. Every method's loss has one signature and returns (loss, metrics).

    loss_fn(batch: LossBatch, cfg: LossConfig) -> (scalar loss, dict of floats)

`LOSSES` maps loss names to them; aepo/methods.py says which loss each method uses, so
trainers never branch on a method name.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aepo.core.advantages import entropy_shaped_advantages
from aepo.core.entropy import masked_mean, sequence_mean


@dataclass(frozen=True)
class LossConfig:
    clip_eps: float = 0.2  # PPO epsilon (paper: 0.2)
    agg_mode: str = "seq-mean-token-mean"  # or "token-mean"
    alpha: float = 0.0  # weight of the REINFORCE term (AEPO add mode)
    entropy_coef: float = 0.0  # Entropy-Reg lambda
    adv_beta: float = 0.4  # Entropy-Adv beta
    adv_kappa: float = 2.0  # Entropy-Adv kappa
    dual_clip_c: float | None = None  # dual-clip bound on negative advantages (None: off)


@dataclass
class LossBatch:
    """Tensors of the update rows (B rows, T response tokens)."""

    log_prob: torch.Tensor  # (B, T) log pi_theta(o_t), with grad
    old_log_prob: torch.Tensor  # (B, T) log pi_old(o_t), no grad
    advantages: torch.Tensor  # (B,) one scalar per response
    mask: torch.Tensor  # (B, T) 1 on response tokens
    token_entropy: torch.Tensor  # (B, T) H_t of pi_theta at T = 1, with grad
    reinforce: torch.Tensor  # (B,) bool, rows of the REINFORCE term (AEPO add mode)
    # Normalisers of the two terms in this (mini)batch (aepo.core.assembly.loss_denominators): the
    # whole update batch's counts over the number of minibatches. None: this batch's own rows.
    main_denom: float | None = None
    reinforce_denom: float | None = None


def agg_loss(loss_mat: torch.Tensor, mask: torch.Tensor, mode: str, denom: float | None = None) -> torch.Tensor:
    """Aggregate a (B, T) per-token loss to a scalar.

    seq-mean-token-mean (paper): (1/D) sum_i (1/|o_i|) sum_t l_it, D = B by default.
    token-mean: (1/D) sum_it l_it, D = sum_it mask_it by default.
    A minibatch passes D from the whole batch, so its loss is its share and no empty batch divides by 0.
    """
    if mode == "seq-mean-token-mean":
        if denom is None:
            return sequence_mean(loss_mat, mask)
        return masked_mean(loss_mat, mask, dim=-1).sum() / denom
    if mode == "token-mean":
        if denom is None:
            return masked_mean(loss_mat, mask)
        return (loss_mat * mask.to(loss_mat.dtype)).sum() / denom
    raise ValueError(f"unknown loss aggregation mode '{mode}'")


def ppo_clip_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float,
    agg_mode: str,
    denom: float | None = None,
    dual_clip_c: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO-clip surrogate (Schulman et al. 2017) as used by GRPO, optionally dual-clipped
    (Ye et al. 2020, as EasyR1 and verl). advantages: (B, T); denom: see `agg_loss`."""
    log_ratio = log_prob - old_log_prob
    ratio = torch.exp(log_ratio)
    # L = -min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    loss_mat = torch.maximum(unclipped, clipped)
    if dual_clip_c is not None:
        # dual clip: L = min(L, -c A_t) where A_t < 0 (a large ratio on a bad token cannot blow the loss up)
        loss_mat = torch.where(advantages < 0, torch.minimum(loss_mat, -dual_clip_c * advantages), loss_mat)
    loss = agg_loss(loss_mat, mask, agg_mode, denom)
    with torch.no_grad():
        metrics = {
            "actor/pg_loss": loss.item(),
            "actor/pg_clipfrac": masked_mean((clipped > unclipped).float(), mask).item(),
            "actor/ppo_kl": masked_mean(-log_ratio, mask).item(),
        }
    return loss, metrics


def reinforce_loss(
    log_prob: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, agg_mode: str, denom: float | None = None
) -> torch.Tensor:
    """Plain REINFORCE: -(1/D) sum_i (1/|o_i|) sum_t log pi(o_t) R_i. returns: (B, T)."""
    return agg_loss(-log_prob * returns, mask, agg_mode, denom)


def _token_adv(batch: LossBatch) -> torch.Tensor:
    return batch.advantages[:, None].expand_as(batch.log_prob)  # (B,) -> (B, T)


def _entropy_metric(batch: LossBatch, cfg: LossConfig) -> float:
    with torch.no_grad():
        return agg_loss(batch.token_entropy, batch.mask, cfg.agg_mode).item()


def grpo_loss(batch: LossBatch, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """GRPO: PPO-clip on group-normalised advantages, no KL (arXiv 2510.08141 Sec. 2)."""
    return ppo_clip_loss(batch.log_prob, batch.old_log_prob, _token_adv(batch), batch.mask,
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
    adv = entropy_shaped_advantages(_token_adv(batch), batch.token_entropy, cfg.adv_beta, cfg.adv_kappa)
    loss, metrics = ppo_clip_loss(batch.log_prob, batch.old_log_prob, adv, batch.mask,
                                  cfg.clip_eps, cfg.agg_mode, batch.main_denom, cfg.dual_clip_c)
    with torch.no_grad():
        metrics["actor/entropy_adv_bonus"] = masked_mean(adv - _token_adv(batch), batch.mask).item()
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
                                  _token_adv(batch)[main], batch.mask[main], cfg.clip_eps, cfg.agg_mode,
                                  batch.main_denom, cfg.dual_clip_c)
    if batch.reinforce.any():
        rf = batch.reinforce
        # grad J_AEPO = grad J_GRPO + alpha * E_{o ~ pi^T} sum_t grad log pi_theta(o_t) R(q, o)
        rl = reinforce_loss(batch.log_prob[rf], _token_adv(batch)[rf], batch.mask[rf], cfg.agg_mode,
                            batch.reinforce_denom)
        loss = loss + cfg.alpha * rl
        metrics["actor/reinforce_loss"] = rl.item()
    return loss, metrics


LOSSES = {
    "grpo": grpo_loss,
    "entropy_reg": entropy_reg_loss,
    "entropy_adv": entropy_adv_loss,
    "aepo": aepo_loss,
}
