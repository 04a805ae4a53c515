"""The embedded trainer against TRL's GRPOTrainer on the tiny lab, at equal work (issue 7).

    pip install -e ".[bench]"
    python benchmarks/vs_trl.py --out bench_out          # the full benchmark (< 10 min on 2 cores)

Variants (each run is its own process, so peak memory is the run's own; runs are interleaved
A B C A B C ... and every number is a median over rounds x steps after warm-up):

  ours-grpo     `aepo train --method grpo`
  ours-aepo     `aepo train --method aepo` (tiny-lab defaults: add mode, in_place layout)
  trl-fp32      TRL GRPOTrainer at equal work: fp32, no gradient checkpointing, generation by
                `model.generate` on the same CPU (no vLLM), loss_type "grpo" (per-response token
                mean, as ours), group-std scaling, beta 0, one iteration, constant lr, AdamW
  trl-default   TRL with its CPU defaults (bf16, gradient checkpointing), else as trl-fp32:
                what a user gets without tuning; run once (slow)
  trl-adaptive  trl-fp32 with use_adaptive_entropy targeting the same entropy as ours-aepo

Equal work: the same cached tiny-lab model and tokenizer, prompts ("N=", the 72 training N),
reward (`aepo.tasks.tinylab.reward`), P = 16 prompts x G = 8 samples, 8 new tokens at most,
T = 1, lr 3e-4, grad clip 1.0, PPO eps 0.2, one optimizer step per batch, the same step count.
Step time is the wall time between consecutive step ends (everything the loop does).

Then a scaling section (`--scaling-steps`, 0 skips it): step time as the batch and the response
length double; the length points force every response to its full length so the tokens really
double. Writes OUT/results.json (every run's per-step record), OUT/summary.md, OUT/entropy.png.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
VARIANTS = ("ours-grpo", "ours-aepo", "trl-fp32", "trl-default", "trl-adaptive")


# ---- measurement helpers (run inside a worker process) ------------------------------------------
def rss_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def force_full_length(trainer_module) -> None:
    """Responses never stop early: the embedded trainer's stop ids become an id no token has."""
    trainer_module.stop_ids = lambda model, tok: [-1]


def run_ours(method: str, steps: int, seed: int, threads: int, sets: dict, full_length: bool) -> dict:
    from aepo.config import RunConfig
    from aepo.embedded import trainer as tr

    if full_length:
        force_full_length(tr)
    ends: list[float] = []
    cpu: list[float] = []
    recs: list[dict] = []

    def progress(step, total, record):
        ends.append(time.perf_counter())
        cpu.append(time.process_time())
        recs.append(record)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(out=f"{tmp}/run", steps=steps, seed=seed, wandb="off", eval_every=0, save_every=0,
                        threads=threads).with_overrides({"algo.method": method, **sets})
        rss0 = rss_mib("VmRSS")
        tr.train(cfg, progress=progress, log=lambda *_: None)
    return {
        "step_s": [b - a for a, b in zip(ends, ends[1:])],  # step k+1's wall time
        "cpu_s": [b - a for a, b in zip(cpu, cpu[1:])],  # and the CPU time this process used in it
        "tokens": [r["perf/gen_tokens_per_s"] * r["timing_s/gen"] for r in recs[1:]],
        "rollout_s": [r["timing_s/gen"] for r in recs[1:]],
        "reward_s": [r.get("timing_s/reward", float("nan")) for r in recs[1:]],
        "old_logp_s": [0.0 for _ in recs[1:]],  # the sampler returns them: no extra forward
        "entropy": [r["actor/entropy"] for r in recs],
        "score": [r["critic/score/mean"] for r in recs],
        "rss_start_mib": rss0,
        "peak_mib": rss_mib("VmHWM"),
    }


def run_trl(kind: str, steps: int, seed: int, threads: int, sets: dict, full_length: bool, target: float) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from aepo.tasks.models import resolve_model_dir
    from aepo.tasks import tinylab

    torch.set_num_threads(threads)
    P = int(sets.get("rollout.prompts_per_step", 16))
    G = int(sets.get("rollout.group_size", 8))
    T = int(sets.get("rollout.max_new_tokens", 8))
    model_dir = resolve_model_dir("tiny", log=lambda *_: None)
    spec = tinylab.load_spec(model_dir)
    items = tinylab.tinylab_items(spec, "train")
    data = Dataset.from_list([{"prompt": it["problem"], "answer": it["answer"]} for it in items])
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)

    def tinylab_reward(completions, answer, **_):  # TRL passes dataset columns by name
        return [tinylab.reward(a, c) for a, c in zip(answer, completions)]

    default = kind == "trl-default"
    gen_kwargs = {"min_new_tokens": T} if full_length else None
    with tempfile.TemporaryDirectory() as tmp:
        args = GRPOConfig(
            output_dir=tmp, use_cpu=True, report_to="none", save_strategy="no", logging_steps=1,
            disable_tqdm=True, seed=seed, data_seed=seed, max_steps=steps,
            per_device_train_batch_size=P * G, gradient_accumulation_steps=1, num_generations=G,
            max_completion_length=T, temperature=1.0, top_p=1.0, top_k=0, generation_kwargs=gen_kwargs,
            learning_rate=3e-4, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
            max_grad_norm=1.0, optim="adamw_torch_fused", epsilon=0.2, beta=0.0, num_iterations=1,
            loss_type="grpo", scale_rewards="group", log_completions=False,
            bf16=True if default else False, gradient_checkpointing=default,
            use_adaptive_entropy=kind == "trl-adaptive", entropy_target=target,
            dataloader_num_workers=0,
        )
        phases = {"rollout_s": [], "reward_s": [], "old_logp_s": []}

        class Timed(GRPOTrainer):
            """Times the rollout and reward calls; nothing else changes."""

            def _generate_single_turn(self, *a, **kw):
                t = time.perf_counter()
                out = super()._generate_single_turn(*a, **kw)
                phases["rollout_s"].append(time.perf_counter() - t)
                return out

            def _calculate_rewards(self, *a, **kw):
                t = time.perf_counter()
                out = super()._calculate_rewards(*a, **kw)
                phases["reward_s"].append(time.perf_counter() - t)
                return out

        ends: list[float] = []
        cpu: list[float] = []
        records: list[dict] = []

        class Clock(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                ends.append(time.perf_counter())
                cpu.append(time.process_time())

            def on_log(self, args, state, control, logs=None, **kw):
                if logs and "entropy" in logs:  # one record per step (logging_steps=1)
                    records.append(dict(logs))

        trainer = Timed(model=model, reward_funcs=tinylab_reward, args=args, train_dataset=data,
                        processing_class=tok, callbacks=[Clock()])
        rss0 = rss_mib("VmRSS")
        trainer.train()
    n, logs = len(ends), records
    return {
        "step_s": [b - a for a, b in zip(ends, ends[1:])],
        "cpu_s": [b - a for a, b in zip(cpu, cpu[1:])],
        "tokens": [lg.get("completions/mean_length", float("nan")) * P * G for lg in logs[1:n]],
        "rollout_s": phases["rollout_s"][1:n],
        "reward_s": phases["reward_s"][1:n],
        "old_logp_s": [0.0] * (n - 1),  # num_iterations 1, no vLLM: TRL reuses sg[new log-probs]
        "entropy": [lg["entropy"] for lg in logs],
        "score": [lg.get("reward", float("nan")) for lg in logs],
        "entropy_coef": [lg.get("entropy_coef", float("nan")) for lg in logs],
        "rss_start_mib": rss0,
        "peak_mib": rss_mib("VmHWM"),
    }


def worker(a: argparse.Namespace) -> None:
    sets = dict(kv.split("=", 1) for kv in a.set)
    sets = {k: (int(v) if v.lstrip("-").isdigit() else v) for k, v in sets.items()}
    if a.worker.startswith("ours-"):
        if a.worker == "ours-aepo":
            sets.setdefault("algo.entropy_target", a.target)
        res = run_ours(a.worker[5:], a.steps, a.seed, a.threads, sets, a.full_length)
    else:
        res = run_trl(a.worker, a.steps, a.seed, a.threads, sets, a.full_length, a.target)
    res.update(variant=a.worker, steps=a.steps, seed=a.seed, sets=sets, full_length=a.full_length)
    Path(a.json).write_text(json.dumps(res))


def launch(variant: str, steps: int, seed: int, threads: int, target: float, sets: dict | None = None,
           full_length: bool = False) -> dict:
    """One run in a fresh process (its own peak memory); returns the worker's record."""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [sys.executable, str(HERE), "--worker", variant, "--json", f.name, "--steps", str(steps),
               "--seed", str(seed), "--threads", str(threads), "--target", str(target)]
        cmd += [a for k, v in (sets or {}).items() for a in ("--set", f"{k}={v}")]
        cmd += ["--full-length"] if full_length else []
        env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error", "TQDM_DISABLE": "1", "WANDB_MODE": "disabled",
               "OMP_NUM_THREADS": str(threads)}
        t0 = time.time()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        rec = json.loads(Path(f.name).read_text())
    rec["process_s"] = time.time() - t0
    return rec


def med(xs) -> float:
    xs = [x for x in xs if x == x]  # drop NaN
    return statistics.median(xs) if xs else float("nan")


def summarize(runs: list[dict], warmup: int) -> dict:
    """Medians over every post-warm-up step of every run of a variant."""
    out: dict = {}
    for r in runs:
        v = out.setdefault(r["variant"], {"step_s": [], "cpu_s": [], "rollout_s": [], "reward_s": [], "old_logp_s": [],
                                          "tok_s": [], "peak_mib": [], "runs": 0})
        k = slice(warmup, None)
        v["step_s"] += r["step_s"][k]
        v["cpu_s"] += r["cpu_s"][k]
        v["rollout_s"] += r["rollout_s"][k]
        v["reward_s"] += r["reward_s"][k]
        v["old_logp_s"] += r["old_logp_s"][k]
        v["tok_s"] += [n / s for n, s in zip(r["tokens"][k], r["step_s"][k])]
        v["peak_mib"].append(r["peak_mib"])
        v["runs"] += 1
    return {name: {"step_ms": med(v["step_s"]) * 1e3, "cpu_ms": med(v["cpu_s"]) * 1e3, "rollout_ms": med(v["rollout_s"]) * 1e3,
                   "reward_ms": med(v["reward_s"]) * 1e3, "old_logp_ms": med(v["old_logp_s"]) * 1e3,
                   "tok_per_s": med(v["tok_s"]), "peak_mib": max(v["peak_mib"]), "runs": v["runs"],
                   "steps_timed": len(v["step_s"])} for name, v in out.items()}


def table(summary: dict, base: str) -> str:
    b = summary[base]
    lines = ["| variant | step (median) | CPU / step | rollout | reward | old log-probs | rest (update) | "
             f"tokens/s | peak RSS | step / {base} | CPU / {base} | peak / {base} |", "|---" * 12 + "|"]
    for name, s in summary.items():
        rest = s["step_ms"] - s["rollout_ms"] - s["reward_ms"] - s["old_logp_ms"]
        lines.append(f"| {name} | {s['step_ms']:.1f} ms | {s['cpu_ms']:.1f} ms | {s['rollout_ms']:.1f} ms | "
                     f"{s['reward_ms']:.2f} ms | {s['old_logp_ms']:.1f} ms | {rest:.1f} ms | {s['tok_per_s']:,.0f} | "
                     f"{s['peak_mib']:.0f} MiB | {s['step_ms'] / b['step_ms']:.3f} | "
                     f"{s['cpu_ms'] / b['cpu_ms']:.3f} | {s['peak_mib'] / b['peak_mib']:.3f} |")
    return "\n".join(lines)


def plot_entropy(runs: list[dict], target: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    colors = {"ours-grpo": "#0072B2", "ours-aepo": "#D55E00", "trl-fp32": "#56B4E9", "trl-adaptive": "#E69F00",
              "trl-default": "#999999"}
    seen = set()
    for r in runs:
        v = r["variant"]
        ax.plot(range(1, len(r["entropy"]) + 1), r["entropy"], color=colors.get(v), lw=1,
                label=None if v in seen else v)
        seen.add(v)
    ax.axhline(target, color="k", ls=":", lw=1, label="target")
    ax.set_xlabel("step")
    ax.set_ylabel("entropy (nats)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    ap.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)
    ap.add_argument("--full-length", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=100, help="steps per run (speed and entropy runs)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds (seed = round)")
    ap.add_argument("--warmup", type=int, default=5, help="steps left out of the medians")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--target", type=float, default=0.7,
                    help="entropy target of ours-aepo and trl-adaptive (0.7: above where GRPO ends, so both must act)")
    ap.add_argument("--default-steps", type=int, default=20, help="steps of the one trl-default run")
    ap.add_argument("--scaling-steps", type=int, default=20, help="steps per scaling point (0: skip)")
    ap.add_argument("--out", default="bench_out", help="results.json, summary.md, entropy.png")
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.time()
    runs: list[dict] = []
    order = ("ours-grpo", "trl-fp32", "ours-aepo", "trl-adaptive")
    for rnd in range(args.rounds):
        for v in order:
            runs.append(launch(v, args.steps, rnd, args.threads, args.target))
            print(f"round {rnd} {v}: median step {med(runs[-1]['step_s'][args.warmup:]) * 1e3:.1f} ms, "
                  f"peak {runs[-1]['peak_mib']:.0f} MiB", flush=True)
    runs.append(launch("trl-default", args.default_steps, 0, args.threads, args.target))
    print(f"trl-default: median step {med(runs[-1]['step_s'][args.warmup:]) * 1e3:.1f} ms", flush=True)
    summary = summarize(runs, args.warmup)
    scaling: list[dict] = []
    if args.scaling_steps:
        points = [("batch", {"rollout.prompts_per_step": p}, False) for p in (8, 16, 32, 64)]
        points += [("length", {"rollout.max_new_tokens": t}, True) for t in (8, 16, 32)]
        for axis, sets, full in points:
            row = {"axis": axis, **sets}
            for v in ("ours-grpo", "trl-fp32"):
                r = launch(v, args.scaling_steps, args.seed, args.threads, args.target, sets, full)
                row[v] = med(r["step_s"][3:]) * 1e3
                row[v + "/cpu"] = med(r["cpu_s"][3:]) * 1e3
                row[v + "/tokens"] = med(r["tokens"][3:])
            scaling.append(row)
            print(f"scaling {sets}: ours {row['ours-grpo/cpu']:.1f} ms CPU, trl {row['trl-fp32/cpu']:.1f} ms CPU",
                  flush=True)
    from aepo.sweep.results import entropy_stats  # mean |H - H*| over the 2nd half, the project's definition

    curves = {}
    for r in runs:
        curves.setdefault(r["variant"], []).append(r["entropy"])
    control = {v: statistics.mean(entropy_stats(c, args.target)["entropy_abs_err"] for c in cs)  # 2nd half
               for v, cs in curves.items() if v != "trl-default"}
    (out / "results.json").write_text(json.dumps({"args": vars(args), "summary": summary, "scaling": scaling,
                                                  "control_error": control, "runs": runs}, indent=1))
    plot_entropy([r for r in runs if r["variant"] != "trl-default"], args.target, out / "entropy.png")
    g, t = summary["ours-grpo"], summary["trl-fp32"]
    lines = [f"{args.rounds} rounds x {args.steps} steps, threads {args.threads}, warm-up {args.warmup}; "
             f"wall {time.time() - t_all:.0f} s", "", table(summary, "trl-fp32"), "",
             f"TRL fp32 / ours GRPO step: {t['step_ms'] / g['step_ms']:.2f}x wall, "
             f"{t['cpu_ms'] / g['cpu_ms']:.2f}x CPU time (goal >= 3)",
             f"ours AEPO / ours GRPO step: {summary['ours-aepo']['step_ms'] / g['step_ms']:.3f} (goal <= 1.05)",
             f"ours GRPO / TRL fp32 peak RSS: {g['peak_mib'] / t['peak_mib']:.2f} (goal <= 1)",
             f"TRL default / TRL fp32 step: {summary['trl-default']['step_ms'] / t['step_ms']:.2f}x", "",
             f"mean |H - {args.target}| over the second half of each run: "
             + ", ".join(f"{v} {e:.3f}" for v, e in control.items()), ""]
    if scaling:
        lines += ["| axis | P x G | max new tokens | tokens / step | ours GRPO wall (CPU) | TRL fp32 wall (CPU) | "
                  "TRL / ours, CPU |", "|---|---|---|---|---|---|---|"]
        for row in scaling:
            p = row.get("rollout.prompts_per_step", 16)
            tt = row.get("rollout.max_new_tokens", 8)
            lines.append(f"| {row['axis']} | {p} x 8 | {tt}{' (forced)' if row['axis'] == 'length' else ''} | "
                         f"{row['ours-grpo/tokens']:.0f} | {row['ours-grpo']:.1f} ({row['ours-grpo/cpu']:.1f}) ms | "
                         f"{row['trl-fp32']:.1f} ({row['trl-fp32/cpu']:.1f}) ms | "
                         f"{row['trl-fp32/cpu'] / row['ours-grpo/cpu']:.2f} |")
    text = "\n".join(lines)
    (out / "summary.md").write_text(text + "\n")
    print("\n" + text)


if __name__ == "__main__":
    main()
