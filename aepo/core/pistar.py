"""Where AEPO's extra (REINFORCE) samples come from: the target distribution pi*.

The paper's third contribution (arXiv 2510.08141, abstract and "Generalizability"): when a
distribution pi* is better than the current policy, REINFORCE on its right samples pulls
pi_theta toward it. Temperature-adjusted pi is the paper's choice; truncated samplings of pi
are two more, with the controller's direction choosing the threshold:

    temperature:  raise: pi^{1/T_high}                  lower: pi^{1/T_low}
    top_p:        raise: nucleus(pi^{1/T_high}, p_high) lower: nucleus(pi, p_low)
    min_p:        raise: min-p(pi^{1/T_high}, m_high)   lower: min-p(pi, m_low)
    teacher:      another causal LM with the same tokenizer, at T = 1, in both directions

Raising keeps T_high and cuts its long tail (the usual high-temperature recipe; min-p was made
for it, Nguyen et al. 2024, arXiv 2407.01082); lowering samples pi itself with its tail cut, a
sharper distribution than pi. The extra rows keep their T = 1 log-probabilities under pi_theta
and the positive-only rule; all rows come from one sampling call, except a teacher's, which
need their own call and one forward of the policy to score them. A teacher has no lever: the
controller keeps its say over the term's weight (its strength) only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExtraSampling:
    """How this step's extra rows are drawn (the sampler's per-row settings)."""

    temperature: float
    top_p: float = 1.0  # 1: no nucleus cut
    min_p: float = 0.0  # 0: no min-p cut

    def metrics(self) -> dict[str, float]:
        return {"controller/temperature": self.temperature, "controller/top_p": self.top_p,
                "controller/min_p": self.min_p}


def extra_sampling(distribution: str, decision, algo) -> ExtraSampling:
    """The extra rows' sampling for a controller `decision` (aepo.core.controller.Decision) under
    `algo` (AlgoConfig: t_high, top_p_high / top_p_low, min_p_high / min_p_low)."""
    if distribution == "temperature":
        return ExtraSampling(decision.temperature)
    if distribution in ("top_p", "min_p"):  # the cut's threshold: algo.top_p_high / _low, min_p_high / _low
        if decision.raising:
            return ExtraSampling(algo.t_high, **{distribution: getattr(algo, f"{distribution}_high")})
        return ExtraSampling(1.0, **{distribution: getattr(algo, f"{distribution}_low")})
    if distribution == "teacher":
        return ExtraSampling(1.0)
    raise ValueError(f"unknown target_distribution '{distribution}'")
