"""Entropy-target schedules: the target H*(t) a controller holds at step t (issue 17).

A constant target is the paper's setting; Entrocraft (arXiv 2604.26326) anneals its band
linearly over the run, so a fair comparison needs every controller to follow any schedule:

    constant:   H*(t) = a
    linear:     H*(t) = a + (b - a) * (t - 1) / (S - 1)
    cosine:     H*(t) = b + (a - b) * (1 + cos(pi * (t - 1) / (S - 1))) / 2
    piecewise:  linear between the (step, value) points, constant before the first and after the last

with a = algo.entropy_target, b = algo.target_end, S the run's steps, t = 1..S.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KINDS = ("constant", "linear", "cosine", "piecewise")


@dataclass(frozen=True)
class Schedule:
    kind: str
    start: float  # a (nats)
    end: float  # b (nats); a for constant
    steps: int  # S
    points: tuple[tuple[int, float], ...] = ()  # piecewise: (step, nats), by step

    def at(self, step: int) -> float:
        """H*(step), nats."""
        frac = 0.0 if self.steps <= 1 else min(max((step - 1) / (self.steps - 1), 0.0), 1.0)
        if self.kind == "constant":
            return self.start
        if self.kind == "linear":
            return self.start + (self.end - self.start) * frac
        if self.kind == "cosine":
            return self.end + (self.start - self.end) * (1 + math.cos(math.pi * frac)) / 2
        pts = self.points
        if step <= pts[0][0]:
            return pts[0][1]
        for (s0, v0), (s1, v1) in zip(pts, pts[1:]):
            if step <= s1:
                return v0 + (v1 - v0) * (step - s0) / (s1 - s0)
        return pts[-1][1]


def parse_points(items: list[str]) -> tuple[tuple[int, float], ...]:
    """['0:0.7', '200:0.5'] -> ((0, 0.7), (200, 0.5)); ValueError on anything else."""
    pts = []
    for item in items:
        step, value = str(item).split(":")
        pts.append((int(step), float(value)))
    if not pts or any(b[0] <= a[0] for a, b in zip(pts, pts[1:])):
        raise ValueError("piecewise points need increasing steps")
    if any(not math.isfinite(v) or v < 0 for _, v in pts):
        raise ValueError("piecewise targets must be finite and >= 0")
    return tuple(pts)


def schedule_from_config(algo, steps: int) -> Schedule:
    """The target schedule an AlgoConfig describes over a run of `steps` steps."""
    end = algo.entropy_target if algo.target_end is None else algo.target_end
    points = parse_points(algo.target_points) if algo.target_schedule == "piecewise" else ()
    return Schedule(algo.target_schedule, algo.entropy_target, end, steps, points)
