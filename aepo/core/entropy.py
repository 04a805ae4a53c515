"""Token entropy and masked reductions.

Paper definition (arXiv 2510.08141, Sec. 2): H_t = -sum_v pi(v) log pi(v) at T = 1; the batch
entropy is the mean over responses of each response's mean H_t over its tokens.
"""

from __future__ import annotations

import torch


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Exact entropy of softmax(logits) over the last axis. (..., V) -> (...)."""
    return entropy_from_logprobs(torch.log_softmax(logits.float(), dim=-1))


def entropy_from_logprobs(logp: torch.Tensor) -> torch.Tensor:
    """The same from log-probabilities already computed (hot paths reuse their log_softmax)."""
    # H = -sum_v pi(v) log pi(v), with 0 log 0 = 0 (a masked-out token has log p = -inf)
    p = logp.exp()
    return -torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(-1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of x where mask is 1. x, mask: (B, T). dim None: over all; dim=-1: per row (B,)."""
    mask = mask.to(x.dtype)
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp_min(1.0)
    return (x * mask).sum(dim) / mask.sum(dim).clamp_min(1.0)


def sequence_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-response token mean, then mean over responses. x, mask: (B, T) -> scalar."""
    return masked_mean(x, mask, dim=-1).mean()


def batch_entropy(token_entropy: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """H(pi): paper's batch entropy. token_entropy, mask: (B, T) -> scalar (nats)."""
    return sequence_mean(token_entropy, mask)


def sampled_logprob_estimate(logprob: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The reference code's entropy estimator: -mean log p(sampled token), same aggregation.

    A Monte Carlo estimate of H from (B, T) log-probs of the sampled tokens -> scalar.
    """
    return -sequence_mean(logprob, mask)
