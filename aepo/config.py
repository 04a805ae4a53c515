"""Run configuration: one dataclass per concern, every field documented.

Each field's `help` names the paper symbol, unit, range and source; the CLI help text and
the docs glossary are built from it. Values come from (in order of precedence) explicit
CLI options, `--set section.field=value`, a YAML/JSON `--config` file, the defaults here.
Derived row counts (at full controller strength) are computed in `derived()`; the trainer
scales them by the controller's strength each step (bang-bang: always full).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aepo.errors import UserError
from aepo.methods import METHODS

CONTROLLERS = ("bang_bang", "pi", "pi_alpha")
AEPO_MODES = ("replace", "add")
REINFORCE_NORMS = ("all_samples", "kept")
LOWERINGS = ("none", "positive_only")
CHAT_TEMPLATES = ("auto", "always", "never")  # (YAML reads on/off as booleans)
TARGET_DISTRIBUTIONS = ("temperature", "top_p", "min_p", "teacher")  # aepo/core/pistar.py
SCHEDULES = ("constant", "linear", "cosine", "piecewise")  # aepo/schedule.py
EXTRA_LAYOUTS = ("additional", "in_place")
LOSS_AGG_MODES = ("seq-mean-token-mean", "token-mean")
BACKENDS = ("embedded", "verl")
WANDB_MODES = ("auto", "online", "offline", "off")


class ConfigError(UserError):
    """A configuration value is out of range or unknown; the message is one line."""


# Sweep axes (aepo.sweep.spec): axis name -> (RunConfig key it sets, tag in the run id; analysis
# labels use the same tags). The order is the order of the tags
# in a run id; `seed` comes last. Baselines vary over `seed` only.
SWEEP_AXES: dict[str, tuple[str, str]] = {
    "entropy_target": ("algo.entropy_target", "H"),
    "alpha": ("algo.alpha", "a"),
    "t_high": ("algo.t_high", "th"),
    "t_low": ("algo.t_low", "tl"),
    "target_schedule": ("algo.target_schedule", "ts"),
    "target_end": ("algo.target_end", "te"),
    "mode": ("algo.mode", "m"),
    "reinforce_norm": ("algo.reinforce_norm", "rn"),
    "controller": ("algo.controller", "c"),
    "lowering": ("algo.lowering", "lw"),
    "target_distribution": ("algo.target_distribution", "pi"),
    "extra_prompt_fraction": ("algo.extra_prompt_fraction", "f"),
    "lr": ("optim.lr", "lr"),
    "group_size": ("rollout.group_size", "G"),
    "start": ("model.name_or_path", "st"),  # the pretrained start (issue 20: e.g. tiny, tiny-b2, tiny-b3)
    "seed": ("seed", "s"),
}

# The math prompt (the trainer's default `data.prompt_template`, `aepo eval --template plain`);
# {problem} is substituted with str.format, so literal braces are doubled.
MATH_PROMPT = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}.\n"


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass
class ModelConfig:
    name_or_path: str = _f("tiny", "A named start: tiny, tiny-weak (builds -b2, -b3 of each), tiny-wide (the "
                           "wide lab: 300 held-out three-digit sums), smollm2-135m (a real instruct LM); a "
                           "Hugging Face model or training-run directory; or a hub id (aepo/tasks/models.py).")
    dtype: str = _f("float32", "Parameter dtype: float32 | bfloat16 | float16.")
    autocast: str = _f("none", "Mixed precision of the embedded trainer: none | bfloat16 (forward passes under "
                       "torch.autocast in bfloat16, weights and optimizer in model.dtype: bf16 on a GPU; CPUs "
                       "without bf16 units run it slower). verl sets its own precision.")
    device: str = _f("auto", "auto | cpu | cuda | cuda:N. auto picks cuda when available.")


@dataclass
class DataConfig:
    train_file: str | None = _f(None, "JSONL/parquet prompt file with `problem`/`answer` fields "
                                "(DAPO-17K format); 'arith': generated arithmetic at 5 levels with 580 held-out "
                                "prompts, math-verify graded (aepo/tasks/arith.py). None: the tiny-lab task.")
    prompt_key: str = _f("problem", "Column holding the prompt text.")
    answer_key: str = _f("answer", "Column holding the gold answer.")
    prompt_template: str = _f(MATH_PROMPT, "Template for math prompts ({problem} is substituted). Unused by the tiny lab and arith.")
    max_prompt_tokens: int = _f(512, "Prompts longer than this (in tokens) are left-truncated.")
    chat_template: str = _f("auto", "auto: each prompt (after prompt_template) becomes a user turn in the "
                            "tokenizer's chat template, with the assistant's generation prompt, when the "
                            "tokenizer has one (instruct models; the tiny lab has none) | always | never. Training "
                            "and validation alike; config.json records whether it was applied.")


@dataclass
class RolloutConfig:
    prompts_per_step: int = _f(16, "Prompts per step P (paper: rollout batch 512).")
    group_size: int = _f(8, "Samples per prompt G (paper: 5).")
    max_new_tokens: int = _f(8, "Response length cap in tokens (paper: 2048).")
    temperature: float = _f(1.0, "Sampling temperature of the main batch (paper: 1.0).")


@dataclass
class OptimConfig:
    lr: float = _f(3e-4, "AdamW learning rate (paper: 1e-6 for the 7B model; tiny lab: 3e-4).")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    grad_clip: float = _f(1.0, "Max global gradient norm (verl default 1.0).")
    clip_eps: float = _f(0.2, "PPO clip epsilon (paper: 0.2).")
    loss_agg_mode: str = _f("seq-mean-token-mean",
                            "seq-mean-token-mean (paper: per-response token mean, then mean over "
                            "responses) | token-mean (mean over all tokens of the batch).")
    num_minibatches: int = _f(1, "Optimizer steps per rollout batch (1 = strictly on-policy). Each minibatch "
                              "holds its share of the main rows and of the REINFORCE rows, normalised by the "
                              "whole batch's counts, so at ratio 1 the minibatch gradients average to the "
                              "full-batch gradient (aepo/core/assembly.py `minibatches`).")
    micro_batch_rows: int = _f(0, "Rows per forward/backward inside each minibatch: gradient accumulation, so "
                               "an update fits in memory at any batch size (0: the whole minibatch at once). "
                               "The loss, gradient and metrics are the minibatch's at any value (whole-batch "
                               "denominators); methods whose loss is not a sum over rows refuse it (embedded).")
    dual_clip_c: float | None = _f(None, "Dual-clip bound c > 1 on negative advantages (Ye et al. 2020, "
                                   "arXiv 1912.09729): loss <= -c A where A < 0. None: off (the paper's PPO-clip "
                                   "formula); the reference code (EasyR1) and verl use c = 3.")


@dataclass
class AlgoConfig:
    method: str = _f("aepo", "One of: " + ", ".join(METHODS) + " (aepo/methods.py).")
    mode: str = _f("add", "AEPO mode. add: paper Eq. 2, GRPO loss + alpha * REINFORCE on the kept (right) "
                   "temperature samples, normalised as `reinforce_norm` says; replace: the reference code "
                   "(kept samples replace the first K rows of the main batch, K = alpha * rows).")
    reinforce_norm: str = _f("all_samples", "add mode: what the REINFORCE term is averaged over. all_samples: "
                             "every temperature sample, right or not (paper Eq. 2 read as an estimator: each "
                             "right sample weighs alpha / N_x, so the term's weight grows with the share of "
                             "right answers) | kept: the kept samples only (total weight alpha whatever that "
                             "share; the toolkit before issue 12). Choice measured in issue 12.")
    alpha: float = _f(2.0, "alpha >= 0. add mode: weight of the REINFORCE term (Eq. 2; tiny lab 2.0, "
                      "the smallest weight that held 0.5 nats in issue-2 trials). replace mode: K / "
                      "main-batch size (reference: 60/2560 = 0.023; <= 1).")
    entropy_target: float = _f(0.5, "Target entropy H_target in nats (>= 0; paper: 0.25-1.0); a schedule's start.")
    target_schedule: str = _f("constant", "How the target moves over the run (aepo/schedule.py): constant | "
                              "linear | cosine (from entropy_target to target_end) | piecewise (target_points). "
                              "Every controller follows it; controller/target logs it per step (issue 17).")
    target_end: float | None = _f(None, "linear / cosine schedules: the target at the last step, nats "
                                  "(Entrocraft anneals its band from 0.6-0.7 to 0.4-0.5).")
    target_points: list = _f([], "piecewise schedule: ['STEP:NATS', ...] with increasing steps, e.g. "
                             "['1:0.7', '200:0.5', '400:0.45']; linear between points, flat outside.")
    t_high: float = _f(1.5, "T_high > 1, used below the target (paper: 1.2; tiny lab: 1.5, "
                        "1.2 lacks authority at this scale).")
    t_low: float = _f(0.8, "T_low in (0, 1), used at or above the target (paper: 0.8).")
    extra_prompt_fraction: float = _f(0.5, "Fraction f of prompts that get temperature-adjusted "
                                      "samples, in (0, 1] (reference: 1/4; tiny lab 1/2).")
    extra_layout: str = _f("in_place", "in_place: the f*P extra groups are sampled instead of "
                           "those prompts' main groups (no extra rollout cost); additional: on top "
                           "of the full main batch (the reference, +f rollout cost). Both in ONE "
                           "generation call.")
    controller: str = _f("pi_alpha", "pi_alpha (default; issue 8): proportional-integral control of the "
                         "multiple of alpha (and K), in [-alpha_max_scale_lowering, alpha_max_scale], "
                         "anti-windup | bang_bang: the paper's switch T_high/T_low at full strength (use it "
                         "to reproduce the paper) | pi: proportional-integral control within the paper's "
                         "budget. Laws: aepo/core/controller.py.")
    target_distribution: str = _f("temperature", "pi*, where the extra (REINFORCE) samples come from "
                                  "(aepo/core/pistar.py; paper contribution 3). temperature: pi at T_high / "
                                  "T_low (the paper) | top_p: raise at T_high within the nucleus top_p_high, "
                                  "lower at T = 1 within top_p_low | min_p: likewise with min_p_high / "
                                  "min_p_low | teacher: samples of teacher_model at T = 1 (the controller "
                                  "sets only the term's weight). Method aepo, embedded backend.")
    teacher_model: str | None = _f(None, "target_distribution=teacher: the teacher, a causal LM with the "
                                   "policy's tokenizer: a tiny-lab name, a model directory, a run directory "
                                   "(its checkpoint) or a hub id. Read only with target_distribution=teacher "
                                   "(so one sweep file may set it for every run).")
    top_p_high: float = _f(0.95, "target_distribution=top_p: nucleus of the raising (T_high) samples, in (0, 1].")
    top_p_low: float = _f(0.7, "target_distribution=top_p: nucleus of the lowering (T = 1) samples, in (0, 1).")
    min_p_high: float = _f(0.05, "target_distribution=min_p: min-p of the raising (T_high) samples, in [0, 1) "
                           "(min-p paper: 0.05-0.1 at high T).")
    min_p_low: float = _f(0.3, "target_distribution=min_p: min-p of the lowering (T = 1) samples, in (0, 1).")
    lowering: str = _f("none", "A second lever for lowering entropy (issue 17.4; not in the paper). none: "
                       "only the T_low samples | positive_only: on every step the controller lowers "
                       "(T = T_low), the main batch keeps its right answers only, A = R (Entrocraft's RAFT++ "
                       "filter above its band; right answers sharpen the policy). AEPO controllers "
                       "bang_bang, pi, pi_alpha.")
    pi_kp: float = _f(2.0, "PI controller: proportional gain k_p (per nat of error).")
    pi_ki: float = _f(0.05, "PI controller: integral gain k_i (per nat of error per step).")
    alpha_kp: float = _f(20.0, "pi_alpha controller: proportional gain k_p (multiples of alpha per nat of "
                         "error; issue 8).")
    alpha_ki: float = _f(1.0, "pi_alpha controller: integral gain k_i (multiples of alpha per nat of error "
                         "per step; issue 8).")
    alpha_max_scale: float = _f(4.0, "pi_alpha controller: s_up >= 1, the largest multiple of alpha (and "
                                "K_max) it uses to raise entropy; 1 is the paper's budget (issue 8).")
    alpha_max_scale_lowering: float = _f(1.0, "pi_alpha controller: s_down in (0, s_up], the largest "
                                         "multiple of alpha it uses to lower entropy (issue 8: more "
                                         "crowds GRPO out of the update and slows the fall).")
    saturation_steps: int = _f(50, "N: steps at a bound (pi: in a row; pi_alpha: a recent share, see "
                               "controller.py) before controller/saturated is set and a warning given.")
    adaptive_delta: float = _f(0.005, "entropy_adaptive: coefficient step per update (TRL 1.16: 0.005).")
    adaptive_max: float = _f(1.0, "entropy_adaptive: upper bound of the coefficient (TRL: 1.0).")
    halve_when_lowering: bool = _f(True, "replace mode: K is halved when T < 1 (reference code).")
    clip_eps_high: float = _f(0.28, "clip_higher: the upper PPO clip epsilon, the lower one is optim.clip_eps "
                              "(DAPO, arXiv 2503.14476: 0.28 over 0.2).")
    cov_ratio: float = _f(2e-4, "clip_cov / kl_cov: share of response tokens singled out by the covariance of "
                          "their advantage and log-prob (Cui et al. 2025, arXiv 2505.22617; verl default 2e-4).")
    clip_cov_low: float = _f(1.0, "clip_cov: lower end of the covariance window whose tokens may be detached "
                             "(verl default 1).")
    clip_cov_high: float = _f(5.0, "clip_cov: upper end of that window (verl default 5).")
    kl_cov_coef: float = _f(0.1, "kl_cov: coefficient of |log pi - log pi_old| on the singled-out tokens "
                            "(verl default 0.1).")
    entrocraft_band: float = _f(0.1, "entrocraft: width of the deadband around the target, nats (Entrocraft, "
                                "arXiv 2604.26326: 0.1).")
    entropic_kp: float = _f(1.0, "entropic: proportional gain on e = H - H* (EntroPIC code: 1).")
    entropic_ki: float = _f(0.01, "entropic: integral gain (EntroPIC code: 0.01).")
    entropic_high_prob: float = _f(0.95, "entropic: tokens with pi_theta above this probability get the PI term "
                                   "(EntroPIC code: 0.95).")
    entropy_coef: float = _f(0.03, "Entropy-Reg lambda (loss - lambda * H; paper: 0.03).")
    adv_beta: float = _f(0.4, "Entropy-Adv beta (Cheng et al. 2025; paper: 0.4).")
    adv_kappa: float = _f(2.0, "Entropy-Adv kappa > 1 (paper: 2; Cheng et al. 2025 require kappa > 1, so the "
                          "bonus |A| / kappa never flips an advantage's sign).")


@dataclass
class VerlConfig:
    """Cluster settings read only by the verl backend (`backend: verl`)."""

    nnodes: int = _f(1, "Nodes (verl trainer.nnodes).")
    gpus_per_node: int = _f(8, "GPUs per node (verl trainer.n_gpus_per_node; paper: 8 x A800).")
    val_file: str | None = _f(None, "Parquet/JSONL of held-out prompts for verl's validation; "
                              "None: validation off (run `aepo eval` on the checkpoints).")
    rollout_engine: str = _f("vllm", "verl rollout engine: vllm | sglang.")
    tensor_parallel: int = _f(1, "Rollout tensor-parallel size per model replica.")
    gpu_memory_utilization: float = _f(0.6, "Share of GPU memory the rollout engine may take, in (0, 1).")
    micro_batch_per_gpu: int = _f(4, "Rows per GPU per forward/backward micro-batch (memory, not math).")
    gradient_checkpointing: bool = _f(True, "Recompute activations in the backward pass (memory for speed).")
    extra_overrides: list = _f([], "Raw Hydra overrides appended last, e.g. ['actor_rollout_ref.actor.fsdp_config."
                               "param_offload=true']. They win over everything the toolkit sets.")


@dataclass
class RunConfig:
    """Everything one training run needs. `out` is the run directory."""

    out: str = _f("runs/default", "Run directory (config.json, metrics.jsonl, result.json, checkpoints).")
    seed: int = _f(0, "Seed for sampling, prompt order and initialisation.")
    steps: int = _f(400, "Number of RL steps (>= 1).")
    backend: str = _f("embedded", "embedded (PyTorch, CPU or one GPU) | verl (multi-GPU).")
    save_every: int = _f(100, "Checkpoint every N steps (also on exit). 0: only on exit.")
    eval_every: int = _f(50, "Greedy validation every N steps (0: off; also at the last step).")
    eval_prompts: int = _f(200, "Held-out prompts used by in-training validation.")
    eval_samples: int = _f(16, "Samples per held-out prompt at T = 1 (mean@k, pass@k); greedy is extra.")
    wandb: str = _f("auto", "auto (online with WANDB_API_KEY, offline otherwise) | online | offline | off.")
    wandb_project: str = _f("aepo", "W&B project.")
    wandb_group: str | None = _f(None, "W&B group (a sweep sets it).")
    threads: int = _f(0, "torch intra-op threads (0: leave torch's default).")
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    verl: VerlConfig = field(default_factory=VerlConfig)

    # ---- (de)serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        return _from_dict(cls, d, prefix="")

    def with_overrides(self, overrides: dict[str, Any]) -> "RunConfig":
        """Return a copy with dotted keys (`algo.alpha`, `steps`) replaced."""
        d = self.to_dict()
        for key, value in overrides.items():
            node = d
            parts = key.split(".")
            for p in parts[:-1]:
                if not isinstance(node.get(p), dict):
                    raise ConfigError(f"unknown config key '{key}'")
                node = node[p]
            if parts[-1] not in node:
                raise ConfigError(f"unknown config key '{key}'")
            node[parts[-1]] = value
        return RunConfig.from_dict(d)

    # ---- checks and derived values -----------------------------------------------------
    def validate(self) -> "RunConfig":
        a, r, o, v = self.algo, self.rollout, self.optim, self.verl
        checks = [
            (a.method in METHODS, f"unknown method '{a.method}' (choose from {', '.join(METHODS)})"),
            (a.mode in AEPO_MODES, f"unknown AEPO mode '{a.mode}' (choose from {', '.join(AEPO_MODES)})"),
            (a.extra_layout in EXTRA_LAYOUTS, f"unknown extra_layout '{a.extra_layout}'"),
            (a.controller in CONTROLLERS, f"unknown controller '{a.controller}' (choose from {', '.join(CONTROLLERS)})"),
            (a.pi_kp >= 0 and a.pi_ki >= 0 and a.saturation_steps >= 1, "PI gains must be >= 0, saturation_steps >= 1"),
            (a.alpha_kp >= 0 and a.alpha_ki >= 0 and a.alpha_max_scale >= 1
             and 0 < a.alpha_max_scale_lowering <= a.alpha_max_scale,
             "pi_alpha gains must be >= 0, alpha_max_scale >= 1, 0 < alpha_max_scale_lowering <= alpha_max_scale"),
            (a.adaptive_delta > 0 and a.adaptive_max > 0, "adaptive_delta and adaptive_max must be > 0"),
            (a.entropy_target >= 0, f"entropy target H must be >= 0 nats, got {a.entropy_target}"),
            (a.target_schedule in SCHEDULES, f"unknown target_schedule '{a.target_schedule}' (choose from "
             f"{', '.join(SCHEDULES)})"),
            (a.target_schedule not in ("linear", "cosine") or (a.target_end is not None and a.target_end >= 0),
             f"a {a.target_schedule} schedule needs target_end >= 0 nats, got {a.target_end}"),
            (a.target_schedule != "piecewise" or _points_ok(a.target_points),
             f"a piecewise schedule needs target_points ['STEP:NATS', ...] with increasing steps, got {a.target_points}"),
            (0 < a.cov_ratio < 1 and a.kl_cov_coef >= 0 and a.clip_cov_low < a.clip_cov_high,
             "clip_cov / kl_cov need 0 < cov_ratio < 1, kl_cov_coef >= 0 and clip_cov_low < clip_cov_high"),
            (a.clip_eps_high > 0 and a.entrocraft_band > 0, "clip_eps_high and entrocraft_band must be > 0"),
            (a.entropic_kp >= 0 and a.entropic_ki >= 0 and 0 < a.entropic_high_prob < 1,
             "entropic needs gains >= 0 and 0 < entropic_high_prob < 1"),
            (a.t_high > 1, f"T_high must be > 1, got {a.t_high}"),
            (0 < a.t_low < 1, f"T_low must be in (0, 1), got {a.t_low}"),
            (a.alpha >= 0, f"alpha must be >= 0, got {a.alpha}"),
            (a.mode != "replace" or a.alpha <= 1 or not uses_extra_samples(a.method),
             f"alpha is K / batch in replace mode and must be <= 1, got {a.alpha}"),
            (0 < a.extra_prompt_fraction <= 1, f"extra_prompt_fraction must be in (0, 1], got {a.extra_prompt_fraction}"),
            (a.entropy_coef >= 0, f"entropy_coef must be >= 0, got {a.entropy_coef}"),
            (a.adv_beta >= 0 and a.adv_kappa > 1, f"Entropy-Adv needs beta >= 0 and kappa > 1 (kappa <= 1 can "
             f"flip an advantage's sign), got beta {a.adv_beta}, kappa {a.adv_kappa}"),
            (a.target_distribution in TARGET_DISTRIBUTIONS, f"unknown target_distribution "
             f"'{a.target_distribution}' (choose from {', '.join(TARGET_DISTRIBUTIONS)})"),
            (a.target_distribution == "temperature" or a.method == "aepo",
             f"target_distribution={a.target_distribution} is for method aepo, not '{a.method}'"),
            (a.target_distribution == "temperature" or self.backend == "embedded",
             f"target_distribution={a.target_distribution} runs on the embedded backend only: use --backend embedded"),
            (a.target_distribution != "teacher" or bool(a.teacher_model),
             "target_distribution=teacher needs algo.teacher_model (a model or run directory, or a name)"),
            (0 < a.top_p_high <= 1 and 0 < a.top_p_low < 1 and 0 <= a.min_p_high < 1 and 0 < a.min_p_low < 1,
             "need 0 < top_p_high <= 1, 0 < top_p_low < 1, 0 <= min_p_high < 1 and 0 < min_p_low < 1"),
            (self.data.chat_template in CHAT_TEMPLATES, f"unknown data.chat_template '{self.data.chat_template}' "
             f"(choose from {', '.join(CHAT_TEMPLATES)})"),
            (self.backend != "verl" or self.data.chat_template != "never",
             "data.chat_template=never: verl always builds its prompts with a chat template (the tiny lab's "
             "plain one where the tokenizer has none); use the embedded backend or auto"),
            (a.lowering in LOWERINGS, f"unknown lowering '{a.lowering}' (choose from {', '.join(LOWERINGS)})"),
            (a.lowering == "none" or a.method not in METHODS or METHODS[a.method].controller == "algo",
             f"lowering={a.lowering} needs an AEPO controller (method aepo), not method '{a.method}'"),
            (a.reinforce_norm in REINFORCE_NORMS,
             f"unknown reinforce_norm '{a.reinforce_norm}' (choose from {', '.join(REINFORCE_NORMS)})"),
            (o.dual_clip_c is None or o.dual_clip_c > 1, f"dual_clip_c must be > 1 (or null: off), got {o.dual_clip_c}"),
            (r.prompts_per_step >= 1 and r.group_size >= 2, "need prompts_per_step >= 1 and group_size >= 2"),
            (r.max_new_tokens >= 1, "max_new_tokens must be >= 1"),
            (r.temperature > 0, "rollout temperature must be > 0"),
            (o.lr > 0, f"lr must be > 0, got {o.lr}"),
            (o.weight_decay >= 0, f"weight_decay must be >= 0, got {o.weight_decay}"),
            (o.grad_clip > 0, f"grad_clip must be > 0 (a negative bound reverses the gradient), got {o.grad_clip}"),
            (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
            (self.eval_prompts >= 1 and self.eval_samples >= 1,
             f"eval_prompts and eval_samples must be >= 1 (eval_every=0 turns validation off), got "
             f"{self.eval_prompts} and {self.eval_samples}"),
            (self.threads >= 0, f"threads must be >= 0 (0: torch's default), got {self.threads}"),
            (re.fullmatch(DEVICES, self.model.device) is not None,
             f"unknown device '{self.model.device}' (auto | cpu | cuda | cuda:N | mps)"),
            (0 < o.clip_eps < 1, f"clip_eps must be in (0, 1), got {o.clip_eps}"),
            (o.loss_agg_mode in LOSS_AGG_MODES, f"unknown loss_agg_mode '{o.loss_agg_mode}'"),
            (o.num_minibatches >= 1, "num_minibatches must be >= 1"),
            (o.micro_batch_rows >= 0, f"optim.micro_batch_rows must be >= 0 (0: off), got {o.micro_batch_rows}"),
            (self.steps >= 1, f"steps must be >= 1, got {self.steps}"),
            (self.save_every >= 0 and self.eval_every >= 0, "save_every and eval_every must be >= 0"),
            (self.backend in BACKENDS, f"unknown backend '{self.backend}' (choose from {', '.join(BACKENDS)})"),
            (self.wandb in WANDB_MODES, f"unknown wandb mode '{self.wandb}' (choose from {', '.join(WANDB_MODES)})"),
            (self.model.dtype in ("float32", "bfloat16", "float16"), f"unknown dtype '{self.model.dtype}'"),
            (self.model.autocast in ("none", "bfloat16"), f"unknown model.autocast '{self.model.autocast}' (none | bfloat16)"),
            (v.nnodes >= 1 and v.gpus_per_node >= 1 and v.tensor_parallel >= 1 and v.micro_batch_per_gpu >= 1,
             "verl: nnodes, gpus_per_node, tensor_parallel and micro_batch_per_gpu must be >= 1"),
            (0 < v.gpu_memory_utilization < 1, f"verl.gpu_memory_utilization must be in (0, 1), got {v.gpu_memory_utilization}"),
            (v.rollout_engine in ("vllm", "sglang"), f"unknown verl.rollout_engine '{v.rollout_engine}' (vllm | sglang)"),
            (isinstance(v.extra_overrides, list) and all(isinstance(x, str) and "=" in x for x in v.extra_overrides),
             "verl.extra_overrides must be a list of 'key=value' strings"),
        ]
        if a.method in METHODS and self.backend not in METHODS[a.method].backends:
            checks.append((False, f"method '{a.method}' runs on the {' and '.join(METHODS[a.method].backends)} "
                                  f"backend only (aepo/methods.py): use --backend {METHODS[a.method].backends[0]}"))
        if o.micro_batch_rows and self.backend == "verl":
            checks.append((False, "optim.micro_batch_rows is the embedded trainer's; verl micro-batches with "
                                  "verl.micro_batch_per_gpu"))
        if o.micro_batch_rows and a.method in METHODS and not METHODS[a.method].row_additive:
            checks.append((False, f"method '{a.method}' computes its loss over the whole minibatch, so "
                                  "optim.micro_batch_rows (gradient accumulation) would change it: use 0, and "
                                  "optim.num_minibatches to bound memory"))
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        d = self.derived()
        if d["extra_prompts"] >= r.prompts_per_step and a.extra_layout == "in_place" and uses_extra_samples(a.method):
            raise ConfigError("in_place layout needs extra_prompt_fraction * prompts_per_step < prompts_per_step")
        if o.num_minibatches > d["main_rows"]:
            raise ConfigError(f"num_minibatches ({o.num_minibatches}) exceeds the {d['main_rows']} main rows of a "
                              "step: every minibatch needs main rows")
        return self

    def derived(self) -> dict[str, int]:
        """Row counts of one step, computed in this one place.

        P prompts, G samples each; P_x = round(f * P) prompts get temperature-adjusted groups.
        in_place: main = (P - P_x) * G rows, extra = P_x * G rows (rollout rows = P * G).
        additional: main = P * G rows, extra = P_x * G rows (rollout rows = (P + P_x) * G).
        """
        a, r = self.algo, self.rollout
        P, G = r.prompts_per_step, r.group_size
        p_x = max(1, round(a.extra_prompt_fraction * P)) if uses_extra_samples(a.method) else 0
        main_prompts = P - p_x if a.extra_layout == "in_place" else P
        main_rows = main_prompts * G
        return {
            "main_prompts": main_prompts,
            "extra_prompts": p_x,
            "main_rows": main_rows,
            "extra_rows": p_x * G,
        }


def _points_ok(points: list) -> bool:
    from aepo.schedule import parse_points  # (math only: no torch)

    try:
        parse_points(points)
        return True
    except (ValueError, TypeError):
        return False


def uses_extra_samples(method: str) -> bool:
    return method in METHODS and METHODS[method].extra_samples


def _from_dict(cls: type, d: dict[str, Any], prefix: str) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"config section '{prefix.rstrip('.') or 'root'}' must be a mapping, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in d.items():
        if key not in fields:
            raise ConfigError(f"unknown config key '{prefix}{key}'")
        f = fields[key]
        if dataclasses.is_dataclass(hints[key]):
            kwargs[key] = _from_dict(hints[key], value, prefix=f"{prefix}{key}.")
        else:
            kwargs[key] = coerce(value, hints[key], f"config value for '{prefix}{key}'")
    return cls(**kwargs)


MAX_INT = 2**31 - 1  # no count, seed or step of a run is larger
DEVICES = r"auto|cpu|mps|cuda(:\d+)?"  # the device strings a run or an evaluation accepts


def coerce(value: Any, hint: Any, name: str) -> Any:
    """`value` as the field's type (`name`: what the error calls it), strictly: a bool is not a number, a number is not a string,
    a float is finite, an int fits in MAX_INT. A numeric string is read as a float (YAML reads
    `5e-1` as a string). Anything else is a one-line ConfigError naming the field."""
    kinds = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in kinds:
        return None
    kind = next(k for k in kinds if k is not type(None))

    def bad(what: str) -> ConfigError:
        return ConfigError(f"{name} must be {what}, got {value!r}"[:300])

    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise bad("true or false")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        if abs(value) > MAX_INT:
            raise bad(f"an integer of at most {MAX_INT}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise bad("a number")
        try:
            x = float(value)
        except (ValueError, OverflowError):
            raise bad("a number") from None
        if not math.isfinite(x):
            raise bad("a finite number")
        return x
    if kind is str:
        if isinstance(value, bool):  # YAML 1.1 reads off / on / yes / no as booleans
            raise bad("a string (YAML reads off, on, yes and no as true or false: quote the value, e.g. \"off\")")
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if kind is list or typing.get_origin(kind) is list:
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise bad("a list of strings")
        return list(value)
    raise bad(getattr(kind, "__name__", str(kind)))


MAX_CONFIG_BYTES = 1 << 20  # a run or sweep file is a few kB; anything past 1 MB is refused unread


def yaml_load(text: str, where: str) -> Any:
    """YAML without aliases (`*name`): a few bytes of nested aliases expand to billions of nodes
    (an alias bomb), and no config needs them. Errors are one-line ConfigErrors naming `where`."""
    import yaml

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.events.AliasEvent):
                raise ConfigError(f"{where}: YAML aliases (*name) are not accepted (line "
                                  f"{self.peek_event().start_mark.line + 1}); write the values out")
            return super().compose_node(parent, index)

    try:
        return yaml.load(text, Loader=NoAliases)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        raise ConfigError(f"malformed YAML in {where}: {' '.join(str(e).split())[:200]}") from None


def read_utf8(path: Path, what: str = "") -> str:
    """A file's text, or a one-line ConfigError when it cannot be read or is not UTF-8."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what}{path} is not UTF-8 text (byte {e.start}): fix or replace the file") from None
    except OSError as e:
        raise ConfigError(f"cannot read {what}{path}: {e.strerror}") from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON run (or sweep) config into a plain dict (sections as nested mappings)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}" + (" (it is a directory)" if p.is_dir() else ""))
    if p.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {p} is {p.stat().st_size} bytes, more than {MAX_CONFIG_BYTES}: not a config")
    text = read_utf8(p, "config file ")
    if p.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"malformed config file {p}: {e.msg} (line {e.lineno})") from None
    else:
        data = yaml_load(text, str(p))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping, not a {type(data).__name__}")
    return data


def parse_set_option(items: list[str]) -> dict[str, Any]:
    """`--set algo.alpha=0.1` -> {"algo.alpha": 0.1}; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml_load(v, f"--set {item}"[:100])
    return out


def field_value(key: str, value: Any, where: str) -> Any:
    """`value` coerced to the type of the RunConfig field at dotted `key` (e.g. 'algo.alpha')."""
    cls: Any = RunConfig
    parts = key.split(".")
    for part in parts[:-1]:
        cls = typing.get_type_hints(cls)[part]
    return coerce(value, typing.get_type_hints(cls)[parts[-1]], where)


def field_help(cls: type, name: str) -> str:
    return next(f.metadata.get("help", "") for f in dataclasses.fields(cls) if f.name == name)
