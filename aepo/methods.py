"""The one table of methods: what each needs from a trainer, a backend, the analysis and the
figures, as data. Nothing in the toolkit branches on a method's name; it reads a field here.

No torch: config validation, `--help` and `--dry-run` read this table without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass

EMBEDDED, VERL = "embedded", "verl"


@dataclass(frozen=True)
class Method:
    name: str
    label: str  # display name in tables and figures
    role: str  # "baseline" (the paper's), "aepo", "ablation" (the paper's two), "extra" (not in the paper)
    loss: str | None  # key of aepo.core.losses.LOSSES (embedded); None: one of verl's own losses
    backends: tuple[str, ...] = (EMBEDDED, VERL)
    # the entropy controller (aepo.core.controller.build_controller): "algo" (algo.controller),
    # "fixed" (no feedback: T = 1 at the full budget), "adaptive_coef" (an entropy bonus's
    # coefficient stepped toward the target), "deadband" (Entrocraft's sign switch), "entropic"
    # (EntroPIC's PI law on a loss term), "none"
    controller: str = "none"
    advantages: str = "grpo"  # the main rows' advantages: "grpo", or "entrocraft" (sign-filtered, aepo/core/advantages.py)
    extra_samples: bool = False  # draws temperature-adjusted groups and splices them (AEPO)
    keep_negatives: bool = False  # ablation: the extra rows keep their GRPO advantage, negatives too
    verl_loss_mode: str = "vanilla"  # verl's actor.policy_loss.loss_mode
    verl_entropy_coeff: bool = False  # verl's actor.entropy_coeff carries algo.entropy_coef (Entropy-Reg)
    verl_shapes_advantages: bool = False  # Entropy-Adv on verl: the trainer shapes the advantages
    verl_clip_high: bool = False  # verl's actor.clip_ratio_high carries algo.clip_eps_high (Clip-Higher)
    # the loss is a sum over rows given the whole batch's denominators, so gradient accumulation
    # over micro-batches (optim.micro_batch_rows) gives the minibatch's gradient; Clip-Cov / KL-Cov
    # pick tokens over the whole minibatch and EntroPIC's term has its own token mean: they are not
    row_additive: bool = True

    @property
    def has_target(self) -> bool:
        """An entropy target means something for this method (it is held or fed back)."""
        return self.controller != "none"


METHODS: dict[str, Method] = {m.name: m for m in (
    # the paper's baselines (arXiv 2510.08141, Sec. 5)
    Method("grpo", "GRPO", "baseline", "grpo"),
    Method("entropy_reg", "Entropy-Reg", "baseline", "entropy_reg", verl_entropy_coeff=True),
    Method("entropy_adv", "Entropy-Adv", "baseline", "entropy_adv", verl_shapes_advantages=True),
    # AEPO and the paper's two ablations
    Method("aepo", "AEPO", "aepo", "aepo", controller="algo", extra_samples=True),
    Method("aepo_no_temp", "AEPO w/o temperature", "ablation", "aepo", controller="fixed", extra_samples=True),
    Method("aepo_with_negatives", "AEPO with negatives", "ablation", "aepo", controller="algo",
           extra_samples=True, keep_negatives=True),
    # not in the paper: a loss-term entropy controller (Skywork-OR1; TRL's use_adaptive_entropy). verl
    # fixes actor.entropy_coeff when its workers start, so a coefficient moved every step cannot reach it.
    Method("entropy_adaptive", "Entropy-Adaptive", "extra", "entropy_reg", backends=(EMBEDDED,),
           controller="adaptive_coef"),
    # not in the paper: the other published ways to keep entropy up or on a target (issue 17)
    Method("clip_higher", "Clip-Higher", "extra", "clip_higher", verl_clip_high=True),  # DAPO
    Method("clip_cov", "Clip-Cov", "extra", "clip_cov", verl_loss_mode="clip_cov", row_additive=False),  # Cui et al.
    Method("kl_cov", "KL-Cov", "extra", "kl_cov", verl_loss_mode="kl_cov", row_additive=False),  # Cui et al. 2025
    Method("entrocraft", "Entrocraft", "extra", "grpo", controller="deadband", advantages="entrocraft"),
    Method("entropic", "EntroPIC", "extra", "entropic", backends=(EMBEDDED,), controller="entropic",
           row_additive=False),
)}


def of_role(*roles: str) -> tuple[str, ...]:
    """Method names with one of these roles, in table order."""
    return tuple(m.name for m in METHODS.values() if m.role in roles)


BASELINES = of_role("baseline")  # the paper's baselines
ABLATIONS = of_role("ablation")  # the paper's two AEPO ablations
AEPO_FAMILY = of_role("aepo", "ablation")  # methods that draw temperature-adjusted samples
TARGETED = tuple(m.name for m in METHODS.values() if m.has_target)  # methods whose target means something
