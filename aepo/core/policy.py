"""The building blocks every policy loss shares: its config, its batch, aggregation, PPO-clip
and REINFORCE (aepo/core/losses.py and aepo/core/peer_losses.py build the methods' losses on them).
Shapes: B rows, T response tokens.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass

import torch

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
    clip_eps_high: float = 0.28  # clip_higher: the upper epsilon (DAPO)
    cov_ratio: float = 2e-4  # clip_cov / kl_cov: share of tokens singled out by covariance
    clip_cov_low: float = 1.0  # clip_cov: covariance window
    clip_cov_high: float = 5.0
    kl_cov_coef: float = 0.1  # kl_cov: coefficient of |log pi - log pi_old|
    entropic_u: float = 0.0  # entropic (set by its controller each step): the PI output in [-1, 1]
    entropic_high_prob: float = 0.95  # entropic: tokens with pi_theta above this are "high-probability"


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

    def detached(self) -> "LossBatch":
        """The same batch without its autograd graph (log_prob and token_entropy detached)."""
        return dataclasses.replace(self, log_prob=self.log_prob.detach(), token_entropy=self.token_entropy.detach())

    @staticmethod
    def cat(parts: list["LossBatch"]) -> "LossBatch":
        """Row-wise concatenation of batches of one width sharing their denominators (micro-batches
        of one minibatch)."""
        tensors = ("log_prob", "old_log_prob", "advantages", "mask", "token_entropy", "reinforce")
        return dataclasses.replace(parts[0], **{f: torch.cat([getattr(p, f) for p in parts]) for f in tensors})


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
    clip_eps_high: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO-clip surrogate (Schulman et al. 2017) as used by GRPO, optionally dual-clipped
    (Ye et al. 2020, as EasyR1 and verl) or asymmetric (`clip_eps_high`, DAPO's clip-higher).
    advantages: (B, T); denom: see `agg_loss`."""
    log_ratio = log_prob - old_log_prob
    ratio = torch.exp(log_ratio)
    # L = -min(r_t A_t, clip(r_t, 1 - eps_low, 1 + eps_high) A_t)
    unclipped = -advantages * ratio
    high = clip_eps if clip_eps_high is None else clip_eps_high
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + high)
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




def token_advantages(batch: LossBatch) -> torch.Tensor:
    """One advantage per response, on each of its tokens: (B,) -> (B, T)."""
    return batch.advantages[:, None].expand_as(batch.log_prob)
