"""Entropy controllers: small classes with explicit, checkpointable state, one interface.

A controller is fed the measured entropy of step t's on-policy main batch and returns the
decision used for step t + 1 (`update(measured_entropy) -> Decision`); `decision` is the one
in force before any measurement. It never reads metrics dicts. Every method has one
(aepo/methods.py `Method.controller`), built in one place, `build_controller`, from the run's
AlgoConfig; its parameters are a small config object per controller.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Decision:
    target: float  # H_target (nats) the decision was taken against
    temperature: float  # T of the extra samples (1.0 when none are drawn or they are drawn at T = 1)
    raising: bool  # True: entropy is below target and the samples should raise it
    # multiple of the regularization budget (alpha, K_max) to use: bang-bang 1, pi in [0, 1],
    # pi_alpha in [0, s_up] (aepo.core.assembly.step_budget); every step samples all f * P prompts at T
    strength: float = 1.0
    saturated: bool = False  # the controller has sat at a bound for `saturation_steps` steps
    entropy_coef: float | None = None  # entropy_adaptive: the bonus coefficient to apply; None: the config's

    def metrics(self) -> dict[str, float]:
        """The decision as `controller/...` metrics (every backend)."""
        return {"controller/target": self.target, "controller/temperature": self.temperature,
                "controller/raising": float(self.raising), "controller/strength": self.strength,
                "controller/saturated": float(self.saturated),
                "controller/entropy_coef": self.entropy_coef if self.entropy_coef is not None else 0.0}

    def saturation_warning(self, saturation_steps: int) -> str:
        bound = ("T_high" if self.raising else "T_low") + f" at {self.strength:g} x K_max (alpha)"
        return (f"warning: the entropy controller has sat at its bound ({bound}) for {saturation_steps} steps: "
                f"target {self.target} is still far on the first approach, or out of reach with these bounds "
                "(controller/saturated marks the steps)")


class Controller(Protocol):
    decision: Decision  # in force for the next step

    def update(self, measured_entropy: float) -> Decision: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


# ---- no feedback -------------------------------------------------------------------------------------
class NoController:
    """Methods without temperature samples or a target (GRPO and the paper's baselines): a
    constant decision that samples nothing at T != 1."""

    def __init__(self, target: float):
        self.decision = Decision(target=target, temperature=1.0, raising=False, strength=0.0)

    def update(self, measured_entropy: float) -> Decision:
        return self.decision

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class FixedBudget(NoController):
    """No feedback: the extra samples at T = 1 and the whole budget every step (the paper's
    no-temperature ablation, arXiv 2510.08141 Sec. 5: only the sampling distribution changes, so
    nothing may lean on the entropy either)."""

    def __init__(self, target: float):
        self.decision = Decision(target=target, temperature=1.0, raising=True, strength=1.0)


# ---- the paper's switch ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BangBangConfig:
    target: float  # H_target (nats)
    t_high: float  # T of the extra samples below the target (> 1)
    t_low: float  # T at or above it (< 1)


class BangBangController:
    """The paper's controller (arXiv 2510.08141, Sec. 3), a bang-bang switch:

        T = T_high  if H(pi_old) <  H_target
        T = T_low   if H(pi_old) >= H_target

    Before any measurement it raises (the reference code starts its signal at 0).
    """

    def __init__(self, cfg: BangBangConfig):
        self.cfg = cfg
        self.last_entropy: float | None = None
        self.decision = Decision(target=cfg.target, temperature=cfg.t_high, raising=True)

    def update(self, measured_entropy: float) -> Decision:
        c = self.cfg
        self.last_entropy = float(measured_entropy)
        raising = self.last_entropy < c.target
        self.decision = Decision(target=c.target, temperature=c.t_high if raising else c.t_low, raising=raising)
        return self.decision

    def state_dict(self) -> dict[str, Any]:
        return {"last_entropy": self.last_entropy, "decision": asdict(self.decision)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_entropy = state["last_entropy"]
        self.decision = Decision(**state["decision"])


# ---- proportional-integral control of the weight -----------------------------------------------------
@dataclass(frozen=True)
class PIAlphaConfig:
    target: float  # H_target (nats)
    t_high: float  # T of the extra samples when raising (> 1)
    t_low: float  # T when lowering (< 1)
    k_p: float = 20.0  # proportional gain, multiples of alpha per nat of error (issue 8)
    k_i: float = 1.0  # integral gain, per nat per step (issue 8)
    s_up: float = 4.0  # largest multiple of alpha used to raise entropy (1: the paper's budget)
    s_down: float = 1.0  # largest multiple used to lower it
    saturation_steps: int = 50  # N of the saturation rule


class PIAlphaController:
    """Proportional-integral control of the REINFORCE weight, past the paper's budget when
    entropy must rise (issue 8; not in the paper). With s_up = s_down = 1 and gentler gains it is
    the `pi` controller: the same law within the paper's budget.

    The plant: the batch entropy H_t drifts down by itself (GRPO sharpens the policy, fastest
    while accuracy climbs) and the temperature samples move it by roughly b * u per step, b a
    small, state-dependent authority (~1e-3 nats per step per unit of alpha in the tiny lab). An
    integrating plant with a persistent disturbance: a PI law holds it with no steady error,
    provided the actuator may lean harder against the sharpening than the paper's fixed budget.
    With e_t = H_target - H_t (nats; > 0: entropy must rise), v_t = k_p * e_t + I_{t-1}, and the
    output range [-s_down, s_up]:

        I_t = clip(I_{t-1} + k_i * e_t, -s_down, s_up)   unless v_t is at a bound and e_t
                                                          pushes it further out (conditional
                                                          integration: anti-windup)
        u_t = clip(k_p * e_t + I_t, -s_down, s_up)
        T   = T_high if u_t > 0 else T_low                (direction, as the paper's switch)
        strength = |u_t|: alpha_eff = strength * alpha (add mode), K_max = strength * alpha * B
                   (replace mode); all f * P extra prompts are sampled at T (step_budget)

    u = +-1 is the paper's budget. The bounds are asymmetric on purpose: entropy falls by itself
    (GRPO), and a REINFORCE term many times alpha crowds the GRPO gradient out of the clipped
    update, which slows the sharpening it was meant to speed up and stalls learning (issue 8
    trials: lowering at 8 x alpha fell slower than at 1 x), so lowering keeps the paper's budget
    (s_down = 1) while raising may use up to s_up = `alpha_max_scale` times alpha.

    Saturation, with N = `saturation_steps` and b_t^+- = 1 when u_t sits at that bound:

        a_t^+- = (1 - 1/N) * a_{t-1}^+- + b_t^+- / N      (share of the last ~N steps at the bound)
        saturated = max(a_t^+, a_t^-) >= 1 - (1 - 1/N)^N  (~ 1 - 1/e)

    A stay of N steps in a row reaches the threshold exactly (as the `pi` law's count), but the
    proportional term's noise, which knocks u off the bound now and then, does not reset it: a
    target the controller reaches only with its whole authority is still reported. Before any
    measurement it raises at strength 1.
    """

    def __init__(self, cfg: PIAlphaConfig):
        self.cfg = cfg
        self.integral = 0.0
        self.share_up, self.share_down = 0.0, 0.0  # a^+, a^-: recent share of steps at each bound
        self.last_entropy: float | None = None
        self.decision = Decision(target=cfg.target, temperature=cfg.t_high, raising=True, strength=1.0)

    def _clip(self, x: float) -> float:
        return min(self.cfg.s_up, max(-self.cfg.s_down, x))

    def update(self, measured_entropy: float) -> Decision:
        c = self.cfg
        self.last_entropy = float(measured_entropy)
        e = c.target - self.last_entropy
        v = c.k_p * e + self.integral  # the output before the integral moves
        winding_up = (v >= c.s_up and e > 0) or (v <= -c.s_down and e < 0)
        if not winding_up:
            self.integral = self._clip(self.integral + c.k_i * e)
        u = self._clip(c.k_p * e + self.integral)
        keep = 1.0 - 1.0 / c.saturation_steps
        self.share_up = keep * self.share_up + (1.0 - keep) * (u >= c.s_up)
        self.share_down = keep * self.share_down + (1.0 - keep) * (u <= -c.s_down)
        threshold = 1.0 - keep ** c.saturation_steps
        saturated = max(self.share_up, self.share_down) >= threshold - 1e-12
        self.decision = Decision(target=c.target, temperature=c.t_high if u > 0 else c.t_low, raising=u > 0,
                                 strength=abs(u), saturated=saturated)
        return self.decision

    def state_dict(self) -> dict[str, Any]:
        return {"last_entropy": self.last_entropy, "integral": self.integral, "share_up": self.share_up,
                "share_down": self.share_down, "decision": asdict(self.decision)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_entropy, self.integral = state["last_entropy"], state["integral"]
        self.share_up, self.share_down = state["share_up"], state["share_down"]
        self.decision = Decision(**state["decision"])


# ---- a loss term's coefficient -------------------------------------------------------------------------
@dataclass(frozen=True)
class AdaptiveCoefConfig:
    target: float  # H_target (nats)
    delta: float = 0.005  # coefficient step per update (TRL 1.16: 0.005)
    c_max: float = 1.0  # upper bound (TRL: 1.0); the lower bound is 0


class AdaptiveEntropyCoef:
    """The `entropy_adaptive` baseline's coefficient (Skywork-OR1; TRL's use_adaptive_entropy).

        c_{t+1} = clip(c_t + delta * sign(H_target - H_t), 0, c_max)

    and the entropy bonus -c * H applies only while H < H_target (the decision's entropy_coef is
    0 once entropy has reached the target). It samples nothing at T != 1.
    """

    def __init__(self, cfg: AdaptiveCoefConfig):
        self.cfg = cfg
        self.coef = 0.0
        self.last_entropy: float | None = None
        self.decision = self._decide()

    def _decide(self) -> Decision:
        below = self.last_entropy is None or self.last_entropy < self.cfg.target
        return Decision(target=self.cfg.target, temperature=1.0, raising=False, strength=0.0,
                        entropy_coef=self.coef if below else 0.0)

    def update(self, measured_entropy: float) -> Decision:
        self.last_entropy = float(measured_entropy)
        step = self.cfg.delta if self.last_entropy < self.cfg.target else -self.cfg.delta
        self.coef = min(self.cfg.c_max, max(0.0, self.coef + step))
        self.decision = self._decide()
        return self.decision

    def state_dict(self) -> dict[str, Any]:
        return {"coef": self.coef, "last_entropy": self.last_entropy}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.coef, self.last_entropy = state["coef"], state["last_entropy"]
        self.decision = self._decide()


# ---- the one place where a run's config becomes a controller ----------------------------------------------
def build_controller(method, algo) -> Controller:
    """The controller `method` (aepo.methods.Method) calls for, with the AlgoConfig's parameters
    (any backend). `algo.controller` picks the law of the AEPO family: bang_bang (the paper's),
    pi (pi_alpha's law within the paper's budget, with the pi_* gains) or pi_alpha."""
    a, t = algo, algo.entropy_target
    if method.controller == "none":
        return NoController(t)
    if method.controller == "fixed":
        return FixedBudget(t)
    if method.controller == "adaptive_coef":
        return AdaptiveEntropyCoef(AdaptiveCoefConfig(t, a.adaptive_delta, a.adaptive_max))
    if a.controller == "bang_bang":
        return BangBangController(BangBangConfig(t, a.t_high, a.t_low))
    if a.controller == "pi":
        return PIAlphaController(PIAlphaConfig(t, a.t_high, a.t_low, k_p=a.pi_kp, k_i=a.pi_ki, s_up=1.0,
                                               s_down=1.0, saturation_steps=a.saturation_steps))
    if a.controller == "pi_alpha":
        return PIAlphaController(PIAlphaConfig(t, a.t_high, a.t_low, k_p=a.alpha_kp, k_i=a.alpha_ki,
                                               s_up=a.alpha_max_scale, s_down=a.alpha_max_scale_lowering,
                                               saturation_steps=a.saturation_steps))
    raise ValueError(f"unknown controller '{a.controller}'")
