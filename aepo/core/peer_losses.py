"""The losses of the other entropy-control methods, on the toolkit's one entropy definition
(issue 17). Each is one pure function (batch, cfg) -> (loss, metrics), as in losses.py.

- clip_higher: DAPO's asymmetric clip (arXiv 2503.14476): PPO-clip with eps_high > eps_low.
- clip_cov / kl_cov: Cui et al. 2025, "The Entropy Mechanism of RL for Reasoning LMs" (arXiv
  2505.22617), as verl implements them (verl/trainer/ppo/core_algos.py): tokens whose
  covariance of advantage and log-prob is large are detached (Clip-Cov) or KL-penalised (KL-Cov).
- entropic: EntroPIC (arXiv 2511.15248): a PI controller's output u reweights the positive and
  negative samples' high-probability tokens; the controller sets cfg.entropic_u.
(Entrocraft changes the advantages, not the loss: aepo/core/advantages.py.)
Shapes: B rows, T response tokens.
"""

from __future__ import annotations

import math

import torch

from aepo.core.entropy import masked_mean
from aepo.core.policy import LossBatch, LossConfig, agg_loss, ppo_clip_loss, token_advantages


def clip_higher_loss(batch: LossBatch, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """DAPO clip-higher: PPO-clip with ratio range [1 - eps_low, 1 + eps_high], eps_high > eps_low,
    so low-probability tokens can grow further before the clip stops them (more exploration)."""
    # L = -min(r_t A_t, clip(r_t, 1 - eps_low, 1 + eps_high) A_t)
    return ppo_clip_loss(batch.log_prob, batch.old_log_prob, token_advantages(batch), batch.mask, cfg.clip_eps,
                         cfg.agg_mode, batch.main_denom, cfg.dual_clip_c, clip_eps_high=cfg.clip_eps_high)


def token_covariance(adv: torch.Tensor, log_prob: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cov_t = (A_t - mean A) (log pi(o_t) - mean log pi) per token, means over the response
    tokens of the batch (Cui et al. 2025, Eq. 4's summand), no gradient. (B, T) -> (B, T)."""
    with torch.no_grad():
        return (adv - masked_mean(adv, mask)) * (log_prob - masked_mean(log_prob, mask))


def clip_cov_loss(batch: LossBatch, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Clip-Cov: among the tokens PPO does not clip whose covariance lies in (low, high), a random
    cov_ratio share of all response tokens is detached (its loss times 0), then PPO-clip."""
    adv, mask = token_advantages(batch), batch.mask
    ratio = torch.exp(batch.log_prob - batch.old_log_prob)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - cfg.clip_eps, 1.0 + cfg.clip_eps)
    cov = token_covariance(adv, batch.log_prob, mask)
    window = (cov > cfg.clip_cov_low) & (cov < cfg.clip_cov_high) & (mask > 0) & ~(clipped > unclipped)
    candidates = torch.nonzero(window)  # (N, 2)
    n = min(max(int(cfg.cov_ratio * float(mask.sum())), 1), candidates.shape[0])
    keep = torch.ones_like(adv)
    chosen = candidates[torch.randperm(candidates.shape[0])[:n]]
    keep[chosen[:, 0], chosen[:, 1]] = 0.0
    # L = max(-r A, -clip(r) A) * (0 on the chosen tokens, 1 elsewhere)
    loss = agg_loss(torch.maximum(unclipped, clipped) * keep, mask, cfg.agg_mode, batch.main_denom)
    with torch.no_grad():
        metrics = {"actor/pg_loss": loss.item(), "actor/pg_clipfrac": masked_mean((keep == 0).float(), mask).item(),
                   "actor/ppo_kl": masked_mean(batch.old_log_prob - batch.log_prob, mask).item()}
    return loss, metrics


def kl_cov_loss(batch: LossBatch, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """KL-Cov: the policy gradient, unclipped, plus kl_cov_coef * |log pi - log pi_old| on the
    cov_ratio share of response tokens with the largest covariance."""
    adv, mask = token_advantages(batch), batch.mask
    log_ratio = batch.log_prob - batch.old_log_prob
    loss_mat = -adv * torch.exp(log_ratio)
    cov = token_covariance(adv, batch.log_prob, mask).masked_fill(mask == 0, -torch.inf)
    k = max(1, int(cfg.cov_ratio * float(mask.sum())))
    top = torch.zeros_like(mask, dtype=torch.bool).view(-1)
    top[torch.topk(cov.view(-1), min(k, int(mask.sum()))).indices] = True
    # L_t = -r_t A_t + coef |log r_t| on the top-k covariance tokens, -r_t A_t elsewhere
    loss_mat = torch.where(top.view_as(mask), loss_mat + cfg.kl_cov_coef * log_ratio.abs(), loss_mat)
    loss = agg_loss(loss_mat, mask, cfg.agg_mode, batch.main_denom)
    with torch.no_grad():
        metrics = {"actor/pg_loss": loss.item(), "actor/pg_clipfrac": 0.0,
                   "actor/ppo_kl": masked_mean(-log_ratio, mask).item()}
    return loss, metrics


def entropic_loss(batch: LossBatch, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """EntroPIC (arXiv 2511.15248; code yk7333/EntroPIC, core_algos.py, loss_mode "entropic"):
    PPO-clip plus u times a policy-gradient term on the high-probability tokens (pi_theta > 0.95,
    judged by the current policy), whatever the advantage's sign, with its own token mean:

        L = L_PPO + u * mean_{t: pi_theta(o_t) > p_high} ( -r_t |A_t| )

    u > 0 (entropy above the target) pushes those tokens up (sharper); u < 0 pushes them down.
    In effect the high-probability tokens of positive samples weigh 1 + u, of negative ones 1 - u."""
    adv = token_advantages(batch)
    loss, metrics = ppo_clip_loss(batch.log_prob, batch.old_log_prob, adv, batch.mask, cfg.clip_eps,
                                  cfg.agg_mode, batch.main_denom, cfg.dual_clip_c)
    high = batch.mask * (batch.log_prob.detach() > math.log(cfg.entropic_high_prob)).to(batch.mask.dtype)
    ratio = torch.exp(batch.log_prob - batch.old_log_prob)
    # L += u * token-mean over the high-probability tokens of (-r_t |A_t|)
    extra = (-ratio * adv.abs() * high).sum() / high.sum().clamp_min(1.0)
    metrics["actor/entropic_high_share"] = masked_mean(high, batch.mask).item()
    return loss + cfg.entropic_u * extra, metrics
