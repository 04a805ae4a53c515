"""What each method needs from a trainer, as data. Trainers read these fields; they never
branch on a method's name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from aepo.core.losses import METHOD_LOSSES


@dataclass(frozen=True)
class MethodSpec:
    loss: Callable  # (LossBatch, LossConfig) -> (loss, metrics)
    extra_samples: bool = False  # draws temperature-adjusted groups and splices them
    extra_at_t1: bool = False  # ablation: the extra groups are drawn at T = 1
    keep_negatives: bool = False  # ablation: extra rows keep their GRPO advantage, negatives too
    adaptive_entropy_coef: bool = False  # entropy bonus with a coefficient stepped toward the target


METHODS: dict[str, MethodSpec] = {
    "grpo": MethodSpec(METHOD_LOSSES["grpo"]),
    "entropy_reg": MethodSpec(METHOD_LOSSES["entropy_reg"]),
    "entropy_adv": MethodSpec(METHOD_LOSSES["entropy_adv"]),
    "entropy_adaptive": MethodSpec(METHOD_LOSSES["entropy_reg"], adaptive_entropy_coef=True),
    "aepo": MethodSpec(METHOD_LOSSES["aepo"], extra_samples=True),
    "aepo_no_temp": MethodSpec(METHOD_LOSSES["aepo_no_temp"], extra_samples=True, extra_at_t1=True),
    "aepo_with_negatives": MethodSpec(METHOD_LOSSES["aepo_with_negatives"], extra_samples=True,
                                      keep_negatives=True),
}
