"""The toolkit's run config as verl Hydra overrides, and the command line that launches it.

Every verl key the toolkit sets is listed in `hydra_overrides`, next to the toolkit field it
comes from. AEPO's own settings travel under a top-level `aepo` section (verl's dataclasses
reject unknown keys, so they cannot ride in verl's sections); `aepo.verl_backend.trainer`
reads them. `verl.extra_overrides` are appended last and win.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from aepo.config import ConfigError, RunConfig, uses_extra_samples
from aepo.methods import METHODS
from aepo.rundir import VERL_CHECKPOINTS

ENTRY_MODULE = "aepo.verl_backend.main"
AGENT_NAME = "aepo_temperature_agent"  # every rollout row goes through aepo.verl_backend.agent_loop
REWARD_MANAGER = "aepo_response"  # verl reads every reward through aepo.verl_backend.reward
TEMPERATURE_COLUMN = "aepo_temperature"  # its per-row sampling temperature; NaN or absent: the rollout's own


@dataclass(frozen=True)
class VerlPaths:
    """Files a verl run reads and writes (absolute paths)."""

    run_dir: Path
    model: str  # a local HF directory or a hub id
    train_parquet: Path
    val_parquet: Path | None
    chat_template: str | None = None  # for tokenizers without one (the tiny lab)

    @property
    def checkpoints(self) -> Path:
        return self.run_dir / VERL_CHECKPOINTS

    @property
    def verl_metrics(self) -> Path:
        return self.run_dir / "verl_metrics.jsonl"


def check_for_verl(cfg: RunConfig) -> None:
    """Limits of the verl backend, as one-line errors before anything launches."""
    a, P = cfg.algo, cfg.rollout.prompts_per_step
    nmb = cfg.optim.num_minibatches
    if cfg.rollout.temperature != 1.0:
        raise ConfigError(f"verl: rollout.temperature must be 1 (got {cfg.rollout.temperature}): verl computes the "
                          "old log-probs and the entropy at the rollout temperature, the toolkit defines both at T = 1")
    if P % nmb:
        raise ConfigError(f"verl: prompts_per_step ({P}) must be a multiple of num_minibatches ({nmb})")
    if uses_extra_samples(a.method):
        if a.extra_layout != "additional":
            raise ConfigError("verl: AEPO needs algo.extra_layout=additional (the main batch is verl's "
                              "dataloader batch; the temperature groups are added to it)")
        p_x = cfg.derived()["extra_prompts"]
        if a.mode == "add" and (P + p_x) % nmb:
            raise ConfigError(f"verl: in add mode prompts_per_step + extra prompts ({P} + {p_x}) must be a "
                              f"multiple of num_minibatches ({nmb})")
        if a.mode == "add" and cfg.optim.loss_agg_mode != "seq-mean-token-mean":
            raise ConfigError("verl: add mode is carried by per-row advantages, exact for "
                              "loss_agg_mode=seq-mean-token-mean only")


def _value(v) -> str:
    """A Python value in Hydra's override grammar."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_value(x) for x in v) + "]"
    s = str(v)
    if s and all(c.isalnum() or c in "._-/:~+" for c in s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def hydra_overrides(cfg: RunConfig, paths: VerlPaths) -> list[str]:
    """Overrides of verl's `ppo_trainer` config for this run (toolkit field -> verl key)."""
    check_for_verl(cfg)
    r, o, a, v = cfg.rollout, cfg.optim, cfg.algo, cfg.verl
    P = r.prompts_per_step
    from aepo.runlog import wandb_mode

    wandb = wandb_mode(cfg.wandb)  # auto: online with WANDB_API_KEY in the environment, else offline
    loggers = ["console", "file"] + (["wandb"] if wandb != "off" else [])
    ov: dict[str, object] = {
        # the legacy DataProto trainer, which aepo.verl_backend.trainer subclasses
        "trainer.use_v1": False,
        # GRPO without KL (paper Sec. 2)
        "algorithm.adv_estimator": "grpo",
        "algorithm.norm_adv_by_std_in_grpo": True,
        "algorithm.use_kl_in_reward": False,
        "actor_rollout_ref.actor.use_kl_loss": False,
        # data
        "data.train_files": str(paths.train_parquet),
        "data.val_files": str(paths.val_parquet or paths.train_parquet),
        "data.prompt_key": "prompt",
        "data.train_batch_size": P,  # rollout.prompts_per_step
        "data.max_prompt_length": cfg.data.max_prompt_tokens,
        "data.max_response_length": r.max_new_tokens,
        "data.truncation": "left",  # as the embedded trainer
        "data.seed": cfg.seed,
        # model
        "actor_rollout_ref.model.path": paths.model,
        "actor_rollout_ref.model.enable_gradient_checkpointing": v.gradient_checkpointing,
        # optimizer and PPO (optim.*)
        "actor_rollout_ref.actor.optim.lr": o.lr,
        "actor_rollout_ref.actor.optim.weight_decay": o.weight_decay,
        "actor_rollout_ref.actor.grad_clip": o.grad_clip,
        "actor_rollout_ref.actor.clip_ratio": o.clip_eps,
        "actor_rollout_ref.actor.clip_ratio_low": o.clip_eps,
        "actor_rollout_ref.actor.clip_ratio_high": a.clip_eps_high if METHODS[a.method].verl_clip_high else o.clip_eps,
        # verl always dual-clips negative advantages (default c = 3); with optim.dual_clip_c off, a bound
        # of 1e9 never binds (verl has no switch)
        "actor_rollout_ref.actor.clip_ratio_c": o.dual_clip_c if o.dual_clip_c is not None else 1e9,
        "actor_rollout_ref.actor.loss_agg_mode": o.loss_agg_mode,
        "actor_rollout_ref.actor.ppo_mini_batch_size": P // o.num_minibatches,  # in prompts
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": v.micro_batch_per_gpu,
        "actor_rollout_ref.actor.ppo_epochs": 1,
        "actor_rollout_ref.actor.data_loader_seed": cfg.seed,
        # Entropy-Reg is verl's own entropy bonus; Clip-Cov / KL-Cov are verl's losses (aepo/methods.py)
        "actor_rollout_ref.actor.entropy_coeff": a.entropy_coef if METHODS[a.method].verl_entropy_coeff else 0.0,
        "actor_rollout_ref.actor.policy_loss.loss_mode": METHODS[a.method].verl_loss_mode,
        "actor_rollout_ref.actor.policy_loss.clip_cov_ratio": a.cov_ratio,
        "actor_rollout_ref.actor.policy_loss.clip_cov_lb": a.clip_cov_low,
        "actor_rollout_ref.actor.policy_loss.clip_cov_ub": a.clip_cov_high,
        "actor_rollout_ref.actor.policy_loss.kl_cov_ratio": a.cov_ratio,
        "actor_rollout_ref.actor.policy_loss.ppo_kl_coef": a.kl_cov_coef,
        # rollout (rollout.*, verl.*)
        "actor_rollout_ref.rollout.name": v.rollout_engine,
        "actor_rollout_ref.rollout.n": r.group_size,
        "actor_rollout_ref.rollout.temperature": r.temperature,
        "actor_rollout_ref.rollout.tensor_model_parallel_size": v.tensor_parallel,
        "actor_rollout_ref.rollout.gpu_memory_utilization": v.gpu_memory_utilization,
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": v.micro_batch_per_gpu,
        "actor_rollout_ref.rollout.seed": cfg.seed,
        "actor_rollout_ref.rollout.agent.default_agent_loop": AGENT_NAME,
        # reward: the toolkit's rewards (aepo.verl_backend.data.compute_score) on responses read as the
        # embedded trainer reads them (aepo.verl_backend.reward: special tokens before the stop count)
        "reward.reward_manager.name": REWARD_MANAGER,
        "reward.custom_reward_function.path": str(Path(__file__).with_name("data.py")),
        "reward.custom_reward_function.name": "compute_score",
        # trainer: length, cluster, checkpoints, validation, logging
        "trainer.total_training_steps": cfg.steps,
        "trainer.total_epochs": 1_000_000,  # the step count ends the run
        "trainer.nnodes": v.nnodes,
        "trainer.n_gpus_per_node": v.gpus_per_node,
        "trainer.save_freq": cfg.save_every if cfg.save_every > 0 else cfg.steps,
        "trainer.test_freq": cfg.eval_every if (paths.val_parquet and cfg.eval_every > 0) else -1,
        "trainer.val_before_train": bool(paths.val_parquet),
        "trainer.default_local_dir": str(paths.checkpoints),
        # the Hugging Face weights beside verl's FSDP shards (global_step_N/actor/huggingface), so
        # `aepo eval` reads a verl run as it reads an embedded one
        "actor_rollout_ref.actor.checkpoint.save_contents": ["model", "optimizer", "extra", "hf_model"],
        "trainer.resume_mode": "auto",
        "trainer.project_name": cfg.wandb_project,  # W&B project; the run name is the run dir's
        "trainer.experiment_name": paths.run_dir.name,
        "trainer.logger": loggers,
    }
    if paths.chat_template:
        ov["actor_rollout_ref.model.custom_chat_template"] = paths.chat_template
    out = [f"{k}={_value(x)}" for k, x in ov.items()]
    # verl's file logger writes where the toolkit's launcher reads (every Ray process gets the variable)
    env = "+ray_kwargs.ray_init.runtime_env.env_vars"
    out.append(f"{env}.VERL_FILE_LOGGER_PATH={_value(str(paths.verl_metrics))}")
    if wandb != "off":  # the mode only; the key stays in the environment, never in the command
        out.append(f"{env}.WANDB_MODE={wandb}")
        if cfg.wandb_group:
            out.append(f"{env}.WANDB_RUN_GROUP={_value(cfg.wandb_group)}")
    # AEPO's settings, read by aepo.verl_backend.trainer
    for f in dataclasses.fields(a):
        out.append(f"+aepo.{f.name}={_value(getattr(a, f.name))}")
    out.append(f"+aepo.extra_prompts={cfg.derived()['extra_prompts']}")
    out.append(f"+aepo.num_minibatches={o.num_minibatches}")
    if paths.chat_template:  # a tokenizer without a chat template has no model-specific token layout either
        out.append("+aepo.generic_token_builder=true")
    out.extend(v.extra_overrides)
    return out


def command(cfg: RunConfig, paths: VerlPaths) -> list[str]:
    """argv that runs this config on verl (Hydra's own files go to RUN_DIR/hydra, not the working dir)."""
    return [sys.executable, "-m", ENTRY_MODULE, *hydra_overrides(cfg, paths), f"hydra.run.dir={paths.run_dir / 'hydra'}"]


def shell_line(argv: list[str]) -> str:
    return " \\\n  ".join(shlex.quote(x) for x in argv)


def compose(overrides: list[str]):
    """verl's `ppo_trainer` Hydra config with these overrides (no Ray, no GPU)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        return hydra_compose(config_name="ppo_trainer", overrides=overrides)
