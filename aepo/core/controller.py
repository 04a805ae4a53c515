"""Entropy controllers: small classes with explicit, checkpointable state, one interface.

A controller is fed the measured entropy of step t's on-policy main batch and returns the
decision used for step t + 1 (`update(measured_entropy) -> Decision`); `decision` is the one
in force before any measurement. It never reads metrics dicts. Every method has one
(aepo/methods.py `Method.controller`), built in one place, `build_controller`, from the run's
AlgoConfig; its parameters are a small config object per controller. The target is a schedule
(aepo/schedule.py; constant by default): the decision for step t + 1 aims at H*(t + 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from aepo.schedule import Schedule


def constant(target: float) -> Schedule:
    return Schedule("constant", target, target, 1)


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
    # +1 right answers only, -1 wrong answers only, 0 GRPO (advantages.py): entrocraft, and AEPO's
    # lowering=positive_only on its lowering steps
    advantage_sign: int = 0
    entropic_u: float = 0.0  # entropic: the PI output in [-1, 1] that reweights high-probability tokens

    def metrics(self) -> dict[str, float]:
        """The decision as `controller/...` metrics (every backend)."""
        out = {"controller/target": self.target, "controller/temperature": self.temperature,
               "controller/raising": float(self.raising), "controller/strength": self.strength,
               "controller/saturated": float(self.saturated),
               "controller/entropy_coef": self.entropy_coef if self.entropy_coef is not None else 0.0}
        if self.advantage_sign:
            out["controller/advantage_sign"] = float(self.advantage_sign)
        if self.entropic_u:
            out["controller/entropic_u"] = self.entropic_u
        return out

    def loss_overrides(self) -> dict[str, float]:
        """The aepo.core.policy.LossConfig fields this decision sets for its step's update."""
        out: dict[str, float] = {"entropic_u": self.entropic_u}
        if self.entropy_coef is not None:
            out["entropy_coef"] = self.entropy_coef
        return out

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
    constant decision that samples nothing at T != 1 (its target only follows the schedule, for the log)."""

    raising, strength = False, 0.0

    def __init__(self, target: Schedule):
        self.target, self.t = target, 0  # t: steps measured so far
        self.decision = self._decide()

    def _decide(self) -> Decision:
        return Decision(target=self.target.at(self.t + 1), temperature=1.0, raising=self.raising,
                        strength=self.strength)

    def update(self, measured_entropy: float) -> Decision:
        self.t += 1
        self.decision = self._decide()
        return self.decision

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t = state.get("t", 0)
        self.decision = self._decide()


class FixedBudget(NoController):
    """No feedback: the extra samples at T = 1 and the whole budget every step (the paper's
    no-temperature ablation, arXiv 2510.08141 Sec. 5: only the sampling distribution changes, so
    nothing may lean on the entropy either)."""

    raising, strength = True, 1.0


# ---- the paper's switch ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BangBangConfig:
    target: Schedule  # H*(t), nats
    t_high: float  # T of the extra samples below the target (> 1)
    t_low: float  # T at or above it (< 1)


class BangBangController:
    """The paper's controller (arXiv 2510.08141, Sec. 3), a bang-bang switch:

        T = T_high  if H(pi_old) <  H_target
        T = T_low   if H(pi_old) >= H_target

    Before any measurement it raises (the reference code starts its signal at 0).
    """

    def __init__(self, cfg: BangBangConfig):
        self.cfg, self.t = cfg, 0
        self.last_entropy: float | None = None
        self.decision = Decision(target=cfg.target.at(1), temperature=cfg.t_high, raising=True)

    def update(self, measured_entropy: float) -> Decision:
        c = self.cfg
        self.t += 1
        target = c.target.at(self.t + 1)
        self.last_entropy = float(measured_entropy)
        raising = self.last_entropy < target
        self.decision = Decision(target=target, temperature=c.t_high if raising else c.t_low, raising=raising)
        return self.decision

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "last_entropy": self.last_entropy, "decision": asdict(self.decision)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t, self.last_entropy = state.get("t", 0), state["last_entropy"]
        self.decision = Decision(**state["decision"])


# ---- proportional-integral control of the weight -----------------------------------------------------
@dataclass(frozen=True)
class PIAlphaConfig:
    target: Schedule  # H*(t), nats
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
        self.cfg, self.t = cfg, 0
        self.integral = 0.0
        self.share_up, self.share_down = 0.0, 0.0  # a^+, a^-: recent share of steps at each bound
        self.last_entropy: float | None = None
        self.decision = Decision(target=cfg.target.at(1), temperature=cfg.t_high, raising=True, strength=1.0)

    def _clip(self, x: float) -> float:
        return min(self.cfg.s_up, max(-self.cfg.s_down, x))

    def update(self, measured_entropy: float) -> Decision:
        c = self.cfg
        self.t += 1
        target = c.target.at(self.t + 1)
        self.last_entropy = float(measured_entropy)
        e = target - self.last_entropy
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
        self.decision = Decision(target=target, temperature=c.t_high if u > 0 else c.t_low, raising=u > 0,
                                 strength=abs(u), saturated=saturated)
        return self.decision

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "last_entropy": self.last_entropy, "integral": self.integral, "share_up": self.share_up,
                "share_down": self.share_down, "decision": asdict(self.decision)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t = state.get("t", 0)
        self.last_entropy, self.integral = state["last_entropy"], state["integral"]
        self.share_up, self.share_down = state["share_up"], state["share_down"]
        self.decision = Decision(**state["decision"])


class PositiveOnlyWhenLowering:
    """A second lowering lever around an AEPO law (issue 17.4; not in the paper): on every step the
    law lowers entropy (T = T_low) the main batch keeps its right answers only,

        A_i = R_i  (advantage_sign = +1, aepo.core.advantages.sign_filtered_advantages)

    Entrocraft's filter above its band (arXiv 2604.26326): reinforcing right answers alone
    sharpens the policy, while GRPO's negative advantages on wrong answers push probability mass
    out onto other tokens. Raising steps are untouched. The law's state is the whole state."""

    def __init__(self, law: Controller):
        self.law = law
        self.decision = self._mark(law.decision)

    @staticmethod
    def _mark(d: Decision) -> Decision:
        return d if d.raising else replace(d, advantage_sign=1)

    def update(self, measured_entropy: float) -> Decision:
        self.decision = self._mark(self.law.update(measured_entropy))
        return self.decision

    def state_dict(self) -> dict[str, Any]:
        return self.law.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.law.load_state_dict(state)
        self.decision = self._mark(self.law.decision)


# ---- a loss term's coefficient -------------------------------------------------------------------------
@dataclass(frozen=True)
class AdaptiveCoefConfig:
    target: Schedule  # H*(t), nats
    delta: float = 0.005  # coefficient step per update (TRL 1.16: 0.005)
    c_max: float = 1.0  # upper bound (TRL: 1.0); the lower bound is 0


class AdaptiveEntropyCoef:
    """The `entropy_adaptive` baseline's coefficient (Skywork-OR1; TRL's use_adaptive_entropy).

        c_{t+1} = clip(c_t + delta * sign(H_target - H_t), 0, c_max)

    and the entropy bonus -c * H applies only while H < H_target (the decision's entropy_coef is
    0 once entropy has reached the target). It samples nothing at T != 1.
    """

    def __init__(self, cfg: AdaptiveCoefConfig):
        self.cfg, self.t = cfg, 0
        self.coef = 0.0
        self.last_entropy: float | None = None
        self.decision = self._decide()

    def _decide(self) -> Decision:
        target = self.cfg.target.at(self.t + 1)
        below = self.last_entropy is None or self.last_entropy < target
        return Decision(target=target, temperature=1.0, raising=False, strength=0.0,
                        entropy_coef=self.coef if below else 0.0)

    def update(self, measured_entropy: float) -> Decision:
        self.t += 1
        self.last_entropy = float(measured_entropy)
        step = self.cfg.delta if self.last_entropy < self.cfg.target.at(self.t + 1) else -self.cfg.delta
        self.coef = min(self.cfg.c_max, max(0.0, self.coef + step))
        self.decision = self._decide()
        return self.decision

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "coef": self.coef, "last_entropy": self.last_entropy}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t, self.coef, self.last_entropy = state.get("t", 0), state["coef"], state["last_entropy"]
        self.decision = self._decide()


# ---- Entrocraft's deadband --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeadbandConfig:
    target: Schedule  # the band's centre H*(t), nats (Entrocraft anneals it linearly)
    width: float = 0.1  # the band's width, nats (Entrocraft: 0.1)


class DeadbandController:
    """Entrocraft (arXiv 2604.26326): a deadband switch on the sign of the advantages the update
    keeps, with the band [H*(t) - w/2, H*(t) + w/2]:

        H > H* + w/2   -> +1: right answers only, A = R (they sharpen: entropy falls)
        H < H* - w/2   -> -1: wrong answers only, A = R - 1 (they spread: entropy rises)
        otherwise      ->  0: GRPO's advantages
    (aepo.core.advantages.sign_filtered_advantages). The signal is the toolkit's batch entropy;
    Entrocraft's code reads verl's token-mean entropy at the rollout temperature.

    It samples nothing at T != 1. Before any measurement it keeps every sample.
    """

    def __init__(self, cfg: DeadbandConfig):
        self.cfg, self.t = cfg, 0
        self.last_entropy: float | None = None
        self.decision = Decision(target=cfg.target.at(1), temperature=1.0, raising=False, strength=0.0)

    def update(self, measured_entropy: float) -> Decision:
        self.t += 1
        target, half = self.cfg.target.at(self.t + 1), self.cfg.width / 2
        self.last_entropy = h = float(measured_entropy)
        sign = 1 if h > target + half else -1 if h < target - half else 0
        self.decision = Decision(target=target, temperature=1.0, raising=sign < 0, strength=float(abs(sign)),
                                 advantage_sign=sign)
        return self.decision

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "last_entropy": self.last_entropy, "decision": asdict(self.decision)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t, self.last_entropy = state["t"], state["last_entropy"]
        self.decision = Decision(**state["decision"])


# ---- EntroPIC's PI law ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EntroPICConfig:
    target: Schedule  # H*(t), nats
    k_p: float = 1.0  # proportional gain (EntroPIC run_entropic.sh: entropy_control_p = 1)
    k_i: float = 0.01  # integral gain (entropy_control_i = 0.01)


class EntroPICController:
    """EntroPIC (arXiv 2511.15248; code yk7333/EntroPIC, dp_actor.py) with e_t = H_t - H*(t)
    (> 0: entropy too high), the integral of the errors before this step I_{t-1}:

        u_t = clip(k_p e_t + k_i I_{t-1}, -1, 1),   then I_t = I_{t-1} + e_t

    as the code has it: the integral is neither clipped nor frozen (no anti-windup), and it is
    updated after u. The code updates per micro-batch on that micro-batch's token-mean entropy at
    the rollout temperature; here once per step on the toolkit's batch entropy (T = 1). u reaches
    the loss as cfg.entropic_u (aepo.core.peer_losses.entropic_loss)."""

    def __init__(self, cfg: EntroPICConfig):
        self.cfg, self.t = cfg, 0
        self.integral = 0.0
        self.last_entropy: float | None = None
        self.decision = Decision(target=cfg.target.at(1), temperature=1.0, raising=False, strength=0.0)

    def update(self, measured_entropy: float) -> Decision:
        c = self.cfg
        self.t += 1
        target = c.target.at(self.t + 1)
        self.last_entropy = float(measured_entropy)
        e = self.last_entropy - target
        u = min(1.0, max(-1.0, c.k_p * e + c.k_i * self.integral))
        self.integral += e
        self.decision = Decision(target=target, temperature=1.0, raising=u < 0, strength=abs(u),
                                 saturated=abs(u) >= 1.0, entropic_u=u)
        return self.decision

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "integral": self.integral, "last_entropy": self.last_entropy,
                "decision": asdict(self.decision)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t, self.integral, self.last_entropy = state["t"], state["integral"], state["last_entropy"]
        self.decision = Decision(**state["decision"])


# ---- the one place where a run's config becomes a controller ----------------------------------------------
def build_controller(method, algo, steps: int) -> Controller:
    """The controller `method` (aepo.methods.Method) calls for, with the AlgoConfig's parameters
    and target schedule over a run of `steps` steps (any backend). `algo.controller` picks the law
    of the AEPO family: bang_bang (the paper's), pi (pi_alpha's law within the paper's budget,
    with the pi_* gains) or pi_alpha."""
    from aepo.schedule import schedule_from_config

    a, t = algo, schedule_from_config(algo, steps)
    if method.controller == "none":
        return NoController(t)
    if method.controller == "fixed":
        return FixedBudget(t)
    if method.controller == "adaptive_coef":
        return AdaptiveEntropyCoef(AdaptiveCoefConfig(t, a.adaptive_delta, a.adaptive_max))
    if method.controller == "deadband":
        return DeadbandController(DeadbandConfig(t, a.entrocraft_band))
    if method.controller == "entropic":
        return EntroPICController(EntroPICConfig(t, a.entropic_kp, a.entropic_ki))
    if a.controller == "bang_bang":
        law: Controller = BangBangController(BangBangConfig(t, a.t_high, a.t_low))
    elif a.controller == "pi":
        law = PIAlphaController(PIAlphaConfig(t, a.t_high, a.t_low, k_p=a.pi_kp, k_i=a.pi_ki, s_up=1.0,
                                              s_down=1.0, saturation_steps=a.saturation_steps))
    elif a.controller == "pi_alpha":
        law = PIAlphaController(PIAlphaConfig(t, a.t_high, a.t_low, k_p=a.alpha_kp, k_i=a.alpha_ki,
                                              s_up=a.alpha_max_scale, s_down=a.alpha_max_scale_lowering,
                                              saturation_steps=a.saturation_steps))
    else:
        raise ValueError(f"unknown controller '{a.controller}'")
    return PositiveOnlyWhenLowering(law) if a.lowering == "positive_only" else law
