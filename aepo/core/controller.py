"""Entropy controllers: small classes with explicit, checkpointable state.

A controller is fed the measured entropy of step t's on-policy main batch and returns the
decision used for step t + 1's temperature-adjusted samples. It never reads metrics dicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Decision:
    temperature: float  # T of the extra samples
    raising: bool  # True: entropy is below target and the samples should raise it
    # multiple of the regularization budget (alpha, K_max) to use: bang-bang 1, pi in [0, 1],
    # pi_alpha in [0, s_up] (aepo.core.assembly.step_budget); every step samples all f * P prompts at T
    strength: float = 1.0
    saturated: bool = False  # the controller has sat at a bound for `saturation_steps` steps

    def metrics(self, target: float, temperature: float) -> dict[str, float]:
        """The decision as `controller/...` metrics (every backend); temperature: what was sampled."""
        return {"controller/target": target, "controller/temperature": temperature,
                "controller/raising": float(self.raising), "controller/strength": self.strength,
                "controller/saturated": float(self.saturated)}

    def saturation_warning(self, target: float, saturation_steps: int) -> str:
        bound = ("T_high" if self.raising else "T_low") + f" at {self.strength:g} x K_max (alpha)"
        return (f"warning: the entropy controller has sat at its bound ({bound}) for {saturation_steps} steps: "
                f"target {target} is still far on the first approach, or out of reach with these bounds "
                "(controller/saturated marks the steps)")


# What a method without temperature samples logs under controller/ (nothing sampled at T != 1).
NO_DECISION = Decision(temperature=1.0, raising=False, strength=0.0, saturated=False)


class FixedBudget:
    """No feedback: the extra samples at T = 1 and the whole budget every step (the paper's
    no-temperature ablation, arXiv 2510.08141 Sec. 5: only the sampling distribution changes, so
    nothing may lean on the entropy either)."""

    decision = Decision(temperature=1.0, raising=True, strength=1.0)

    def update(self, measured_entropy: float) -> Decision:
        return self.decision

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class BangBangController:
    """The paper's controller (arXiv 2510.08141, Sec. 3), a bang-bang switch:

        T = T_high  if H(pi_old) <  H_target
        T = T_low   if H(pi_old) >= H_target

    Before any measurement it raises (the reference code starts its signal at 0).
    """

    def __init__(self, target: float, t_high: float, t_low: float):
        self.target, self.t_high, self.t_low = target, t_high, t_low
        self.last_entropy: float | None = None
        self.decision = Decision(temperature=t_high, raising=True)

    def update(self, measured_entropy: float) -> Decision:
        self.last_entropy = float(measured_entropy)
        raising = self.last_entropy < self.target
        self.decision = Decision(temperature=self.t_high if raising else self.t_low, raising=raising)
        return self.decision

    def state_dict(self) -> dict[str, Any]:
        return {"last_entropy": self.last_entropy, "decision": asdict(self.decision)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_entropy = state["last_entropy"]
        self.decision = Decision(**state["decision"])


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

    def __init__(self, target: float, t_high: float, t_low: float, k_p: float = 20.0, k_i: float = 1.0,
                 s_up: float = 4.0, s_down: float = 1.0, saturation_steps: int = 50):
        self.target, self.t_high, self.t_low = target, t_high, t_low
        self.k_p, self.k_i, self.s_up, self.s_down = k_p, k_i, s_up, s_down
        self.saturation_steps = saturation_steps
        self.integral = 0.0
        self.share_up, self.share_down = 0.0, 0.0  # a^+, a^-: recent share of steps at each bound
        self.last_entropy: float | None = None
        self.decision = Decision(temperature=t_high, raising=True, strength=1.0)

    def _clip(self, x: float) -> float:
        return min(self.s_up, max(-self.s_down, x))

    def update(self, measured_entropy: float) -> Decision:
        self.last_entropy = float(measured_entropy)
        e = self.target - self.last_entropy
        v = self.k_p * e + self.integral  # the output before the integral moves
        winding_up = (v >= self.s_up and e > 0) or (v <= -self.s_down and e < 0)
        if not winding_up:
            self.integral = self._clip(self.integral + self.k_i * e)
        u = self._clip(self.k_p * e + self.integral)
        keep = 1.0 - 1.0 / self.saturation_steps
        self.share_up = keep * self.share_up + (1.0 - keep) * (u >= self.s_up)
        self.share_down = keep * self.share_down + (1.0 - keep) * (u <= -self.s_down)
        threshold = 1.0 - keep ** self.saturation_steps
        saturated = max(self.share_up, self.share_down) >= threshold - 1e-12
        self.decision = Decision(temperature=self.t_high if u > 0 else self.t_low, raising=u > 0,
                                 strength=abs(u), saturated=saturated)
        return self.decision

    def state_dict(self) -> dict[str, Any]:
        return {"last_entropy": self.last_entropy, "integral": self.integral, "share_up": self.share_up,
                "share_down": self.share_down, "decision": asdict(self.decision)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_entropy, self.integral = state["last_entropy"], state["integral"]
        self.share_up, self.share_down = state["share_up"], state["share_down"]
        self.decision = Decision(**state["decision"])


class AdaptiveEntropyCoef:
    """The `entropy_adaptive` baseline's coefficient (Skywork-OR1; TRL's use_adaptive_entropy).

        c_{t+1} = clip(c_t + delta * sign(H_target - H_t), c_min, c_max)

    and the entropy bonus -c * H applies only while H < H_target.
    """

    def __init__(self, target: float, delta: float = 0.005, c_min: float = 0.0, c_max: float = 1.0,
                 c_init: float = 0.0):
        self.target, self.delta, self.c_min, self.c_max = target, delta, c_min, c_max
        self.coef = c_init
        self.last_entropy: float | None = None

    def active_coef(self) -> float:
        """The coefficient for the next update: 0 once entropy has reached the target."""
        below = self.last_entropy is None or self.last_entropy < self.target
        return self.coef if below else 0.0

    def update(self, measured_entropy: float) -> float:
        self.last_entropy = float(measured_entropy)
        step = self.delta if self.last_entropy < self.target else -self.delta
        self.coef = min(self.c_max, max(self.c_min, self.coef + step))
        return self.coef

    def state_dict(self) -> dict[str, Any]:
        return {"coef": self.coef, "last_entropy": self.last_entropy}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.coef, self.last_entropy = state["coef"], state["last_entropy"]


def make_controller(kind: str, target: float, t_high: float, t_low: float, k_p: float, k_i: float,
                    saturation_steps: int, *, alpha_kp: float = 20.0, alpha_ki: float = 1.0,
                    alpha_max_scale: float = 4.0, alpha_max_scale_lowering: float = 1.0):
    """A controller by name; k_p, k_i are the `pi` gains, alpha_* the `pi_alpha` ones."""
    if kind == "bang_bang":
        return BangBangController(target, t_high, t_low)
    if kind == "pi":  # the pi_alpha law within the paper's budget, with its own gains
        return PIAlphaController(target, t_high, t_low, k_p, k_i, 1.0, 1.0, saturation_steps)
    if kind == "pi_alpha":
        return PIAlphaController(target, t_high, t_low, alpha_kp, alpha_ki, alpha_max_scale,
                                 alpha_max_scale_lowering, saturation_steps)
    raise ValueError(f"unknown controller '{kind}'")


def controller_from_config(algo) -> Any:
    """The controller an `aepo.config.AlgoConfig` names, with its gains (any backend); the
    no-temperature ablation runs without one, at the fixed budget."""
    from aepo.core.methods import METHODS

    spec = METHODS.get(algo.method)  # (verl's own losses have no entry: they sample no extras)
    if spec is not None and spec.extra_at_t1:
        return FixedBudget()
    return make_controller(algo.controller, algo.entropy_target, algo.t_high, algo.t_low, algo.pi_kp, algo.pi_ki,
                           algo.saturation_steps, alpha_kp=algo.alpha_kp, alpha_ki=algo.alpha_ki,
                           alpha_max_scale=algo.alpha_max_scale,
                           alpha_max_scale_lowering=algo.alpha_max_scale_lowering)
