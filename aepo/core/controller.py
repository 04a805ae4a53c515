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

    def metrics(self) -> dict[str, float]:
        return {"controller/temperature": self.temperature, "controller/raising": float(self.raising)}


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
