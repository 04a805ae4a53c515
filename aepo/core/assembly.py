"""AEPO batch assembly: which rows enter the update, with which advantage.

Rows are indexed in the concatenation [main rows (B_m); extra rows (B_x)], where the extra
rows are the temperature-adjusted groups (contiguous groups of G). The result is a list of
indices plus per-row advantages, so any backend (tensors, verl DataProto) applies it by
index selection. arXiv 2510.08141, Eq. 2 and reference code (Sec. 4 of docs/aepo-spec.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aepo.core.advantages import grpo_advantages
from aepo.core.controller import Decision

# The reference code keeps extra samples whose GRPO advantage exceeds this (binary reward:
# the right answers of groups that are not all right).
KEEP_ADVANTAGE_THRESHOLD = 0.05


@dataclass
class Splice:
    rows: torch.Tensor  # (B_u,) long, indices into [main; extra]
    advantages: torch.Tensor  # (B_u,) float
    reinforce: torch.Tensor  # (B_u,) bool, rows of the add-mode REINFORCE term
    num_kept: int  # extra samples that passed the filter
    num_used: int  # of those, how many entered the update
    aepo: bool = True  # False: a method without temperature samples (no_sample is then 0)

    def metrics(self) -> dict[str, float]:
        return {
            "controller/num_kept_samples": float(self.num_kept),
            "controller/num_reinforce_samples": float(self.num_used),
            "controller/no_sample": float(self.aepo and self.num_used == 0),
        }


def assemble_aepo_batch(
    main_advantages: torch.Tensor,
    extra_rewards: torch.Tensor,
    group_size: int,
    mode: str,
    k_max: int,
    raising: bool,
    keep_negatives: bool = False,
    halve_when_lowering: bool = True,
) -> Splice:
    """Build the AEPO update batch.

    main_advantages: (B_m,) GRPO advantages of the main rows.
    extra_rewards: (B_x,) rewards of the extra rows (B_x may be 0).
    replace: K = min(k_max, #kept) (halved when lowering); the first K main rows are replaced
      by the first K kept rows with advantage 1; the batch size stays B_m.
    add: every main row plus every kept row, the kept ones flagged for the REINFORCE term.
    keep_negatives (ablation): kept = every extra row with a non-zero GRPO advantage, which it keeps.
    A step with no kept sample is normal: the update is then plain GRPO.
    """
    b_m = main_advantages.shape[0]
    main_advantages = main_advantages.float()
    if extra_rewards.numel():
        extra_adv = grpo_advantages(extra_rewards, group_size)  # (B_x,)
    else:
        extra_adv = torch.zeros(0)
    if keep_negatives:
        kept = torch.nonzero(extra_adv.abs() > 0).flatten()
        kept_adv = extra_adv[kept]
    else:
        kept = torch.nonzero(extra_adv > KEEP_ADVANTAGE_THRESHOLD).flatten()
        kept_adv = torch.ones(kept.shape[0])  # REINFORCE: R = 1 for every kept (right) answer
    if mode == "replace":
        k = min(k_max, kept.shape[0])
        if halve_when_lowering and not raising:
            k //= 2
        k = min(k, b_m)
        rows = torch.cat([b_m + kept[:k], torch.arange(k, b_m)])
        adv = torch.cat([kept_adv[:k], main_advantages[k:]])
        reinforce = torch.zeros(b_m, dtype=torch.bool)
        used = k
    elif mode == "add":
        rows = torch.cat([torch.arange(b_m), b_m + kept])
        adv = torch.cat([main_advantages, kept_adv])
        reinforce = torch.cat([torch.zeros(b_m, dtype=torch.bool), torch.ones(kept.shape[0], dtype=torch.bool)])
        used = kept.shape[0]
    else:
        raise ValueError(f"unknown AEPO mode '{mode}'")
    return Splice(rows=rows.long(), advantages=adv, reinforce=reinforce,
                  num_kept=int(kept.shape[0]), num_used=int(used))


# ---- one decision, one budget (both backends) ---------------------------------------------------
@dataclass(frozen=True)
class Budget:
    """What a controller decision allows this step (aepo/core/controller.py `Decision`)."""

    alpha: float  # add mode: the REINFORCE weight alpha_eff = strength * alpha
    k_max: int  # replace mode: at most K_max = round(strength * alpha * B_m) rows replaced


def step_budget(decision: Decision, alpha: float, main_rows: int) -> Budget:
    """The regularisation budget of one step. The strength scales the weight, never the number
    of temperature samples: every step samples all f * P extra prompts (both backends)."""
    return Budget(alpha=alpha * decision.strength, k_max=int(round(decision.strength * alpha * main_rows)))


# ---- minibatches and their normalisers -------------------------------------------------------------
@dataclass(frozen=True)
class Denominators:
    """Normalisers of the loss terms over the WHOLE update batch (see `losses.agg_loss`)."""

    main: float  # GRPO term: update rows not flagged REINFORCE (seq-mean) or their tokens (token-mean)
    reinforce: float  # REINFORCE term: all N_x temperature samples or the kept ones (or their tokens)

    def per_minibatch(self, n: int) -> "Denominators":
        return Denominators(self.main / n, self.reinforce / n)


def loss_denominators(mask: torch.Tensor, reinforce: torch.Tensor, agg_mode: str, reinforce_norm: str,
                      extra_mask: torch.Tensor) -> Denominators:
    """mask: (B_u, T) update rows; reinforce: (B_u,) bool; extra_mask: (B_x, T) every temperature
    sample, kept or not. reinforce_norm 'all_samples' divides the REINFORCE term by all N_x samples
    (Eq. 2's estimator: E over o ~ pi^T), 'kept' by the kept ones."""
    rf = reinforce.bool()
    pool = extra_mask if reinforce_norm == "all_samples" else mask[rf]
    if agg_mode == "seq-mean-token-mean":
        main, rest = float((~rf).sum()), float(pool.shape[0])
    else:  # token-mean
        main, rest = float(mask[~rf].sum()), float(pool.sum())
    return Denominators(max(main, 1.0), max(rest, 1.0))


def minibatches(reinforce: torch.Tensor, n: int) -> list[torch.Tensor]:
    """Row indices of n minibatches of an update batch, each with its share of the GRPO rows and
    of the REINFORCE rows (in their order). reinforce: (B_u,) bool. With the whole batch's
    `Denominators` divided by n, the mean over minibatches of their losses (and, at ratio 1,
    of their gradients) is the full-batch loss: each minibatch estimates the full gradient, as a
    PPO minibatch does, and a step without REINFORCE rows is plain GRPO's minibatching."""
    main = torch.nonzero(~reinforce.bool()).flatten().tensor_split(n)
    rf = torch.nonzero(reinforce.bool()).flatten().tensor_split(n)
    return [torch.cat([m, r]) for m, r in zip(main, rf)]
