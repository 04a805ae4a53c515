"""Every metric key a trainer may emit, with its meaning. verl's names where verl has the quantity.

`python -m aepo.glossary > docs/metrics.md` regenerates the docs page; a test checks that the
trainers emit only keys listed here. `<benchmark>` stands for a benchmark name, `<k>` for a count.
"""

from __future__ import annotations

import re

GLOSSARY: dict[str, str] = {
    "step": "RL step, 1-based.",
    # actor (verl names where verl has them)
    "actor/entropy": "Exact mean token entropy (nats) of the on-policy main batch at T = 1: per-response "
                     "token mean, then mean over responses (paper Sec. 2). The controller's signal.",
    "actor/entropy_mc": "The reference code's estimator of the same: -mean log p of the sampled tokens.",
    "actor/pg_loss": "PPO-clip policy loss of the update rows (GRPO part).",
    "actor/pg_clipfrac": "Fraction of response tokens where the clipped objective was active.",
    "actor/ppo_kl": "Mean log(pi_old / pi_theta) over response tokens (0 when strictly on-policy).",
    "actor/grad_norm": "Global gradient norm before clipping.",
    "actor/lr": "Learning rate.",
    "actor/reinforce_loss": "AEPO add mode: the REINFORCE term before its alpha weight.",
    "actor/entropy_loss": "Entropy-Reg: the entropy term H(pi_theta) of the update rows, with gradient.",
    "actor/entropy_adv_bonus": "Entropy-Adv: mean advantage bonus min(beta H_t, |A|/kappa) per token.",
    "actor/entropic_high_share": "EntroPIC: share of response tokens above its high-probability threshold "
                                 "(they get the PI term).",
    "critic/score/mean": "Mean reward of the main batch (training accuracy at T = 1).",
    "critic/advantages/mean": "Mean advantage of the update rows.",
    "response_length/mean": "Mean response length of the main batch (tokens).",
    # controller
    "controller/target": "Target entropy H_target (nats).",
    "controller/temperature": "Temperature of this step's extra samples (1.0 for methods without them).",
    "controller/raising": "1 when this step's extra samples aim to raise entropy (H below target).",
    "controller/strength": "Multiple of the regularization budget (alpha, K_max) used this step: bang-bang "
                           "1, pi in [0, 1], pi_alpha in [0, alpha_max_scale]; min(1, it) of the f*P "
                           "prompts get temperature samples.",
    "controller/saturated": "1 while the controller sits at a bound of its output: `pi`, for `saturation_steps` "
                            "steps in a row; `pi_alpha`, for a recent share of steps (weighted over ~N = "
                            "`saturation_steps`) of at least 1 - 1/e, which N steps in a row reach.",
    "controller/entropy_coef": "entropy_adaptive: the entropy-bonus coefficient applied this step.",
    "controller/advantage_sign": "entrocraft: +1 when this step's update kept only positive-advantage samples "
                                 "(entropy above the band), -1 only negative ones (below it); absent inside it. "
                                 "AEPO with algo.lowering=positive_only: +1 on lowering steps.",
    "controller/top_p": "target_distribution=top_p or min_p: the nucleus the extra rows were drawn within "
                        "this step (1: none; aepo/core/pistar.py).",
    "controller/min_p": "target_distribution=top_p or min_p: the min-p threshold of the extra rows this step (0: none).",
    "controller/entropic_u": "entropic: the PI output u in [-1, 1] applied to high-probability tokens this step.",
    "controller/extra_score/mean": "Mean reward of the temperature-adjusted samples.",
    "controller/num_kept_samples": "Extra samples passing the filter (right answers of mixed groups).",
    "controller/num_reinforce_samples": "Kept samples that entered the update (K in replace mode).",
    "controller/no_sample": "1 when an AEPO step had no kept sample (a normal, logged event).",
    # timing and throughput
    "timing_s/gen": "Seconds in the generation call.",
    "timing_s/update": "Seconds in reward, advantages, assembly and the optimizer update.",
    "timing_s/reward": "Seconds in decoding and scoring the responses (part of timing_s/update).",
    "timing_s/step": "Seconds for the whole step (validation excluded).",
    "perf/gen_tokens_per_s": "Generated response tokens per second of generation.",
    # validation
    "val/<benchmark>/accuracy": "Greedy held-out accuracy.",
    "val/<benchmark>/mean@<k>": "Mean accuracy of k samples at T = 1 per prompt (sampled pass@1).",
    "val/<benchmark>/pass@<k>": "Fraction of prompts with at least one right answer among k samples at T = 1.",
}

_PATTERNS = [re.compile("^" + re.escape(k).replace("<benchmark>", r"[a-z0-9_]+").replace("<k>", r"\d+") + "$")
             for k in GLOSSARY]


def is_known(key: str) -> bool:
    return any(p.match(key) for p in _PATTERNS)


def markdown() -> str:
    lines = ["# Metrics", "", "Every key in `metrics.jsonl` (and W&B). Generated by `python -m aepo.glossary`.", "",
             "| key | meaning |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in GLOSSARY.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
