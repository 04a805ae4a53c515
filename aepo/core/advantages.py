"""Advantage estimators (outcome rewards, one scalar per response)."""

from __future__ import annotations

import torch


def grpo_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """GRPO group-normalised advantages (Shao et al. 2024; arXiv 2510.08141 Sec. 2).

    rewards: (B,) with B = P * G, rows of one prompt contiguous. Returns (B,).
    All-right and all-wrong groups get exactly 0.
    """
    r = rewards.float().view(-1, group_size)  # (P, G)
    # A_i = (R_i - mean(R)) / std(R)   (unbiased std over the group, as verl)
    mean = r.mean(dim=1, keepdim=True)
    std = r.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(mean)
    adv = (r - mean) / (std + eps)
    adv = torch.where(std > 0, adv, torch.zeros_like(adv))
    return adv.view(-1)


def entropy_shaped_advantages(
    advantages: torch.Tensor, token_entropy: torch.Tensor, beta: float, kappa: float
) -> torch.Tensor:
    """Entropy-Adv (Cheng et al. 2025, "Reasoning with Exploration: An Entropy Perspective").

    advantages: (B, T) per-token advantages; token_entropy: (B, T). Returns (B, T).
    The bonus is clipped by |A| / kappa, so with kappa > 1 (the paper's condition) it never flips
    an advantage's sign, and it is 0 where A = 0.
    """
    if not kappa > 1:
        raise ValueError(f"Entropy-Adv needs kappa > 1, got {kappa}")
    # A_shaped = A + min(beta * sg[H_t], |A| / kappa)
    bonus = torch.minimum(beta * token_entropy.detach(), advantages.abs() / kappa)
    return advantages + bonus


def sign_filtered_advantages(rewards: torch.Tensor, grpo_adv: torch.Tensor, sign: int) -> torch.Tensor:
    """Entrocraft's advantages (arXiv 2604.26326; code lblaoke/entrocraft, core_algos.py
    `compute_grpo_range_outcome_advantage`), with binary rewards R in {0, 1}. rewards, grpo_adv: (B,).

        sign = +1 (entropy above the band):  A_i = R_i       right answers only (RAFT++), not normalised
        sign = -1 (below the band):          A_i = R_i - 1   wrong answers only (NSR), not normalised
        sign =  0 (inside the band):         A_i = GRPO's A_i
    """
    r = rewards.float()
    if sign > 0:
        return r
    if sign < 0:
        return r - 1.0
    return grpo_adv.float()
