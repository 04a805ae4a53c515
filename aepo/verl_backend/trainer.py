"""AEPO on verl: a subclass of verl's DataProto trainer (`RayPPOTrainer`) that changes four hooks
and leaves `fit()` as verl ships it.

One step, in verl's order, with what this class adds (*):
  1. rollout: (*) the first P_x prompts' groups are copied with the controller's temperature in
     a per-row column and go out in the SAME `generate_sequences` call as the main batch; the
     copies are split off again before verl sees the output (`_TemperatureRollout`).
  2. reward, old log-probs and entropy on the main rows, as verl does: verl's `actor/entropy`
     (exact, T = 1, main rows only). (*) The same number is fed to the controller, and the
     per-token entropies are kept for Entropy-Adv (`_compute_old_log_prob`).
  3. GRPO advantages on the main rows, as verl does.
  4. (*) Before the actor update: reward and old log-probs of the extra rows, then the core's
     `assemble_aepo_batch` (replace/add, halving rule, no-sample steps) picks the rows and
     advantages (`_update_actor`). Entropy-Adv shapes the advantages here too.
  5. (*) Controller state is saved beside verl's checkpoint and restored on resume.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
import torch
from verl import DataProto
from verl.trainer.main_ppo_v0 import BaseTaskRunner
from verl.trainer.ppo.ray_trainer import RayPPOTrainer, compute_response_mask

from aepo.config import AlgoConfig
from aepo.core.advantages import entropy_shaped_advantages, sign_filtered_advantages
from aepo.core.assembly import assemble_aepo_batch, loss_denominators, step_budget
from aepo.core.controller import build_controller
from aepo.core.entropy import batch_entropy, masked_mean
from aepo.methods import METHODS, Method
from aepo.verl_backend.splice import (ENTROPY_COLUMN, sequence_advantages, sequence_values, split_generated,
                                      update_batch, verl_update_rows, with_extra_groups)

CONTROLLER_FILE = "aepo_controller.json"


def algo_from_config(config) -> tuple[AlgoConfig, int, int]:
    """(AlgoConfig, extra prompts P_x, num_minibatches) from the `aepo` section of a verl config."""
    section = dict(config.get("aepo") or {})
    extra_prompts = int(section.pop("extra_prompts", 0))
    num_minibatches = int(section.pop("num_minibatches", 1))
    names = {f.name for f in dataclasses.fields(AlgoConfig)}
    return AlgoConfig(**{k: v for k, v in section.items() if k in names}), extra_prompts, num_minibatches


class _TemperatureRollout:
    """Wraps verl's rollout manager: training calls get the temperature groups, validation none."""

    def __init__(self, inner, trainer: "AepoRayTrainer"):
        self._inner, self._trainer = inner, trainer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def generate_sequences(self, batch: DataProto) -> DataProto:
        t = self._trainer
        if batch.meta_info.get("validate", False) or not t.spec.extra_samples:
            return self._inner.generate_sequences(batch)
        t.step_decision = t.controller.decision  # (the no-temperature ablation's fixed budget: T = 1)
        n = t.config.actor_rollout_ref.rollout.n
        combined = with_extra_groups(batch, t.extra_prompts, n, t.step_decision.temperature)
        output = self._inner.generate_sequences(combined)
        main, t.extra_output = split_generated(output, len(batch))
        return main


class AepoRayTrainer(RayPPOTrainer):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.algo, self.extra_prompts, self.num_minibatches = algo_from_config(self.config)
        self.spec: Method = METHODS[self.algo.method]
        self.controller = build_controller(self.spec, self.algo, int(self.config.trainer.total_training_steps))
        self.step_decision = self.controller.decision
        self.extra_output: DataProto | None = None
        self.main_entropy: float | None = None
        self.warned_saturation = False

    # ---- 1. rollout --------------------------------------------------------------------------
    def init_workers(self) -> None:
        super().init_workers()
        self.async_rollout_manager = _TemperatureRollout(self.async_rollout_manager, self)

    # ---- 2. entropy of the main rows -----------------------------------------------------------
    def _compute_old_log_prob(self, batch: DataProto):
        old, mfu = super()._compute_old_log_prob(batch)
        entropys = old.batch["entropys"]  # (B_m, T), exact, T = 1 (the toolkit refuses rollout.temperature != 1)
        # the paper's batch entropy, as the embedded trainer measures it (verl logs its own under
        # loss_agg_mode; `_update_actor` puts this one under actor/entropy, so both backends agree)
        self.main_entropy = batch_entropy(entropys, batch.batch["response_mask"]).item()
        if self.spec.verl_shapes_advantages:  # verl pops "entropys"; Entropy-Adv shapes with them
            old.batch[ENTROPY_COLUMN] = entropys
        return old, mfu

    # ---- 4. AEPO splice, Entropy-Adv, controller -------------------------------------------------
    def _update_actor(self, batch: DataProto) -> DataProto:
        metrics: dict[str, float] = {}
        minibatch_prompts = None
        if self.spec.extra_samples:
            batch, metrics, minibatch_prompts = self._splice(batch)
        if self.spec.verl_shapes_advantages:
            mask = batch.batch["response_mask"].float()
            shaped = entropy_shaped_advantages(batch.batch["advantages"], batch.batch[ENTROPY_COLUMN],
                                               self.algo.adv_beta, self.algo.adv_kappa) * mask
            metrics["actor/entropy_adv_bonus"] = masked_mean(shaped - batch.batch["advantages"], mask).item()
            batch.batch["advantages"] = shaped
            batch.pop(batch_keys=[ENTROPY_COLUMN])  # not shipped to the workers
        if self.spec.advantages == "entrocraft":  # the deadband's sign picks the samples (aepo/core/advantages.py)
            self.step_decision = self.controller.decision
            mask = batch.batch["response_mask"]
            rewards = sequence_values(batch.batch["token_level_rewards"], mask)  # (B,) binary
            adv = sign_filtered_advantages(rewards, sequence_advantages(batch.batch["advantages"], mask),
                                           self.step_decision.advantage_sign)
            batch.batch["advantages"] = adv[:, None].to(mask.dtype) * mask
        if self.spec.has_target and self.main_entropy is not None:
            metrics.update(self._controller_step())
        if self.main_entropy is not None:
            metrics["actor/entropy"] = self.main_entropy
        with self._minibatch_prompts(minibatch_prompts):
            output = super()._update_actor(batch)
        output.meta_info["metrics"].update(metrics)
        return output

    def _splice(self, batch: DataProto) -> tuple[DataProto, dict[str, float], int | None]:
        extra, self.extra_output = self.extra_output, None
        if extra is None:
            raise RuntimeError("AEPO: no temperature samples for this step (the rollout wrapper did not run)")
        if "response_mask" not in extra.batch.keys():
            extra.batch["response_mask"] = compute_response_mask(extra)
        if "rm_scores" not in extra.batch.keys():
            extra = extra.union(self._compute_reward_colocate(extra))
        extra.batch["token_level_scores"] = extra.batch["rm_scores"]
        extra.batch["token_level_rewards"] = extra.batch["rm_scores"]
        old, _ = super()._compute_old_log_prob(extra)  # the parent's: the controller signal stays main-only
        old.batch.pop("entropys")
        extra = extra.union(old)

        a, d = self.algo, self.step_decision
        n = self.config.actor_rollout_ref.rollout.n
        b_m, b_x = len(batch), len(extra)
        extra_rewards = sequence_values(extra.batch["rm_scores"], extra.batch["response_mask"])  # (B_x,)
        main_adv = sequence_advantages(batch.batch["advantages"], batch.batch["response_mask"])  # (B_m,)
        main_rewards = sequence_values(batch.batch["token_level_rewards"], batch.batch["response_mask"])
        main_adv = sign_filtered_advantages(main_rewards, main_adv, d.advantage_sign)  # lowering=positive_only
        budget = step_budget(d, a.alpha, b_m)  # the embedded trainer's K_max and alpha_eff
        splice = assemble_aepo_batch(main_adv, extra_rewards, n, a.mode, budget.k_max, d.raising,
                                     self.spec.keep_negatives, a.halve_when_lowering)
        minibatch_prompts = None
        if a.mode == "add":  # the update batch is B_m + B_x rows, in whole mini-batches
            minibatch_prompts = (b_m + b_x) // n // self.num_minibatches
        upd_mask = torch.cat([batch.batch["response_mask"], extra.batch["response_mask"]])[splice.rows]
        denoms = loss_denominators(upd_mask, splice.reinforce, self.config.actor_rollout_ref.actor.loss_agg_mode,
                                   a.reinforce_norm, extra.batch["response_mask"])
        rows, adv = verl_update_rows(splice, b_m, b_x, a.mode == "add", budget.alpha, self.num_minibatches,
                                     denoms.reinforce)
        metrics = {**splice.metrics(), "controller/extra_score/mean": extra_rewards.mean().item()}
        return update_batch(batch, extra, rows, adv), metrics, minibatch_prompts

    @contextmanager
    def _minibatch_prompts(self, prompts: int | None):
        """verl sizes mini-batches from the config; add mode's update batch is larger than the rollout's."""
        actor = self.config.actor_rollout_ref.actor
        saved = actor.ppo_mini_batch_size
        if prompts is not None:
            actor.ppo_mini_batch_size = prompts
        try:
            yield
        finally:
            actor.ppo_mini_batch_size = saved

    def _controller_step(self) -> dict[str, float]:
        d = self.step_decision
        self.controller.update(self.main_entropy)
        if self.controller.decision.saturated and not self.warned_saturation:
            self.warned_saturation = True
            print(self.controller.decision.saturation_warning(self.algo.saturation_steps))
        return d.metrics()

    # ---- 5. controller state in verl's checkpoints -------------------------------------------------
    def _controller_path(self) -> Path:
        return Path(self.config.trainer.default_local_dir) / f"global_step_{self.global_steps}" / CONTROLLER_FILE

    def _save_checkpoint(self) -> None:
        super()._save_checkpoint()
        path = self._controller_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {"controller": self.controller.state_dict(), "step_decision": dataclasses.asdict(self.step_decision)}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, path)

    def _load_checkpoint(self):
        out = super()._load_checkpoint()
        if self.global_steps > 0:
            path = self._controller_path()
            if path.is_file():
                state = json.loads(path.read_text())
                self.controller.load_state_dict(state["controller"])
                self.step_decision = type(self.step_decision)(**state["step_decision"])
            elif self.spec.extra_samples:
                print(f"warning: {path} is missing: the entropy controller restarts from its initial state")
        return out


@ray.remote
class AepoTaskRunner(BaseTaskRunner):
    """verl's legacy task runner, building `AepoRayTrainer` (the same set-up calls, in verl's order)."""

    def run(self, config) -> None:
        from omegaconf import OmegaConf
        from verl.trainer.ppo.utils import create_rl_dataset, create_rl_sampler, need_critic, need_reference_policy
        from verl.utils.config import omega_conf_to_dataclass, validate_config
        from verl.utils.dataset.rl_dataset import collate_fn

        print(f"AEPO task runner on {socket.gethostname()}, pid {os.getpid()}")
        OmegaConf.resolve(config)
        actor_rollout_cls, worker_group_cls = self.add_actor_rollout_worker(config)
        self.add_critic_worker(config)
        self.add_reward_model_resource_pool(config)
        self.add_teacher_model_resource_pool(config)
        self.add_ref_policy_worker(config, actor_rollout_cls)
        validate_config(config=config, use_reference_policy=need_reference_policy(config),
                        use_critic=need_critic(config))
        model_config = omega_conf_to_dataclass(config.actor_rollout_ref.model)
        tokenizer, processor = model_config.tokenizer, model_config.processor
        datasets = {split: create_rl_dataset(files, config.data, tokenizer, processor, is_train=split == "train")
                    for split, files in (("train", config.data.train_files), ("val", config.data.val_files))}
        trainer = AepoRayTrainer(
            config=config, tokenizer=tokenizer, processor=processor,
            role_worker_mapping=self.role_worker_mapping,
            resource_pool_manager=self.init_resource_pool_mgr(config),
            ray_worker_group_cls=worker_group_cls,
            train_dataset=datasets["train"], val_dataset=datasets["val"], collate_fn=collate_fn,
            train_sampler=create_rl_sampler(config.data, datasets["train"]),
        )
        trainer.init_workers()
        trainer.fit()
