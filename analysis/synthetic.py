"""Synthetic runs with known answers, for tests and for trying `aepo plot` without training.

Entropy (nats) of step s = 1..S, with H0 the initial entropy and tau = S / 5:
- grpo, entropy_adv, aepo_no_temp, aepo_with_negatives: collapse, H0 (0.1 + 0.9 e^{-s / tau});
- entropy_reg: a mid-training surge, H0 (1 + 1.5 bump(s)), bump a Gaussian centred at S / 2;
- aepo at target H*: H* + (H0 - H*) e^{-s / tau} plus a small oscillation (the bang-bang swing).
Held-out accuracy at the end is a known concave function of the achieved entropy,
`peak_acc - curvature (H - peak_h)^2`, plus seed noise; GRPO sits `grpo_gap` below AEPO's peak.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from analysis.load import ABLATIONS, AEPO_FAMILY, BASELINES, Run

COLLAPSING = ("grpo", "entropy_adv", "aepo_no_temp", "aepo_with_negatives")


def entropy_curve(method: str, target: float, steps: int, h0: float, rng: np.random.Generator,
                  noise: float) -> np.ndarray:
    """(S,) entropy of one synthetic run."""
    s = np.arange(1, steps + 1, dtype=float)
    tau = steps / 5
    if method in COLLAPSING:
        h = h0 * (0.1 + 0.9 * np.exp(-s / tau))
    elif method == "entropy_reg":
        h = h0 * (1 + 1.5 * np.exp(-((s - steps / 2) / (steps / 10)) ** 2))
    else:
        h = target + (h0 - target) * np.exp(-s / tau) + 0.01 * np.sin(s)
    return np.clip(h + noise * rng.standard_normal(steps), 1e-3, None)


def accuracy_of(h: float, peak_h: float, peak_acc: float, curvature: float) -> float:
    return float(np.clip(peak_acc - curvature * (h - peak_h) ** 2, 0.0, 1.0))


def synthetic_run(method: str, seed: int, target: float = 0.5, steps: int = 40, eval_every: int = 10,
                  h0: float = 0.8, noise: float = 0.01, acc_noise: float = 0.01, peak_h: float = 0.6,
                  peak_acc: float = 0.6, curvature: float = 0.8, grpo_gap: float = 0.1) -> Run:
    """One run in the trainer's record format (metrics keys, config and result shapes)."""
    rng = np.random.default_rng(zlib.crc32(f"{method}|{target:.4f}|{seed}".encode()))  # stable across processes
    h = entropy_curve(method, target, steps, h0, rng, noise)
    achieved = float(h[steps // 2:].mean())
    final = accuracy_of(achieved, peak_h, peak_acc, curvature) - (grpo_gap if method != "aepo" else 0.0)
    final = float(np.clip(final + acc_noise * rng.standard_normal(), 0, 1))
    metrics = []
    for i in range(steps):
        step = i + 1
        progress = 1 - math.exp(-3 * step / steps)
        rec = {"step": step, "actor/entropy": float(h[i]), "actor/entropy_mc": float(h[i] * 1.01),
               "critic/score/mean": float(np.clip(final * progress + 0.05 * rng.standard_normal(), 0, 1)),
               "controller/target": target, "controller/temperature": 1.0, "timing_s/step": 0.05}
        if eval_every and (step % eval_every == 0 or step == steps):
            acc = final * progress / (1 - math.exp(-3))
            rec.update({"val/tinylab/accuracy": acc, "val/tinylab/mean@4": 0.8 * acc,
                        "val/tinylab/pass@4": min(1.0, 1.3 * acc)})
        metrics.append(rec)
    config = {"seed": seed, "steps": steps, "algo": {"method": method, "mode": "replace", "alpha": 0.12,
                                                     "entropy_target": target, "t_high": 1.5, "t_low": 0.8}}
    run_id = f"{method}__H{target}__s{seed}" if method in AEPO_FAMILY else f"{method}__s{seed}"
    result = {"status": "finished", "method": method, "entropy_target": target, "alpha": 0.12,
              "seed": seed, "steps": steps, "steps_done": steps}
    return Run(run_id, config, metrics, result)


def synthetic_study(targets: Sequence[float] = (0.25, 0.5, 0.75, 1.0), seeds: int = 3,
                    ablation_targets: Sequence[float] = (0.5,), **kw) -> list[Run]:
    """The claims study in miniature: GRPO, Entropy-Reg, Entropy-Adv, AEPO at each target and
    both ablations, `seeds` seeds each."""
    runs = []
    for s in range(seeds):
        runs += [synthetic_run(m, s, **kw) for m in BASELINES]
        runs += [synthetic_run("aepo", s, t, **kw) for t in targets]
        runs += [synthetic_run(m, s, t, **kw) for t in ablation_targets
                 for m in ABLATIONS]
    return runs


def write_sweep(runs: Sequence[Run], sweep_dir: str | Path) -> Path:
    """Write runs as SWEEP_DIR/runs/<run_id>/{config.json, metrics.jsonl, result.json}."""
    for r in runs:
        d = Path(sweep_dir) / "runs" / r.run_id
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps({"config": r.config, "derived": {}}))
        (d / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in r.metrics))
        (d / "result.json").write_text(json.dumps(r.result))
        for i, ev in enumerate(r.evals):
            (d / f"eval{i or ''}").mkdir(exist_ok=True)
            (d / f"eval{i or ''}" / "summary.json").write_text(json.dumps(ev))
    return Path(sweep_dir)
