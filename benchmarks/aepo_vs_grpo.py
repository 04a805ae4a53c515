"""AEPO's per-step cost against GRPO's on the tiny lab, measured in one interleaved run.

    python benchmarks/aepo_vs_grpo.py [--steps 150] [--rounds 3] [--target 0.5]

Runs GRPO, AEPO with the extra groups in place of part of the batch (`in_place`, default) and
AEPO with them on top (`additional`, the reference's layout; one generation call either way),
interleaved A B C A B C ..., and prints the median step time, generated tokens/s, the AEPO/GRPO
ratios, and each AEPO layout's entropy control (mean |H - target| over the second half).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from aepo.config import RunConfig
from aepo.embedded.trainer import train
from aepo.rundir import read_metrics

VARIANTS = {
    "grpo": {"algo.method": "grpo"},
    "aepo in_place": {"algo.method": "aepo", "algo.extra_layout": "in_place"},
    "aepo additional": {"algo.method": "aepo", "algo.extra_layout": "additional"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--target", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    step_times: dict[str, list[float]] = {k: [] for k in VARIANTS}
    tok_rates: dict[str, list[float]] = {k: [] for k in VARIANTS}
    errors: dict[str, list[float]] = {k: [] for k in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for name, over in VARIANTS.items():
                out = Path(tmp) / f"{name.replace(' ', '_')}_{rnd}"
                cfg = RunConfig(out=str(out), steps=args.steps, seed=rnd, wandb="off", eval_every=0,
                                save_every=0, threads=args.threads).with_overrides(
                    {**over, "algo.entropy_target": args.target})
                train(cfg, log=lambda *_: None)
                rows = read_metrics(out / "metrics.jsonl")[5:]  # skip warm-up steps
                step_times[name] += [r["timing_s/step"] for r in rows]
                tok_rates[name] += [r["perf/gen_tokens_per_s"] for r in rows]
                half = rows[len(rows) // 2:]
                errors[name].append(statistics.mean(abs(r["actor/entropy"] - args.target) for r in half))
                print(f"round {rnd} {name}: median step {statistics.median(step_times[name]) * 1e3:.1f} ms",
                      flush=True)
    base = statistics.median(step_times["grpo"])
    print(f"\n{args.rounds} rounds x {args.steps} steps, target H = {args.target}")
    print(f"{'variant':18s} {'step ms':>8s} {'ratio':>6s} {'gen tok/s':>10s} {'|H-H*| 2nd half':>16s}")
    for name in VARIANTS:
        med = statistics.median(step_times[name])
        err = f"{statistics.mean(errors[name]):.3f}" if name != "grpo" else "-"
        print(f"{name:18s} {med * 1e3:8.1f} {med / base:6.3f} {statistics.median(tok_rates[name]):10.0f} {err:>16s}")


if __name__ == "__main__":
    main()
