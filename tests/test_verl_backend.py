"""The verl backend on CPU, with the real verl installed: plugin registration (fresh process and
Ray worker), the AEPO splice on a DataProto against the embedded core, config translation
through verl's own Hydra config and dataclasses, the per-row temperature agent loop, and the
launcher's records. A GPU end-to-end run is at the bottom (skipped without CUDA and vLLM)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("verl", reason="the verl extra is not installed (pip install 'aepo[verl]')")

from omegaconf import OmegaConf  # noqa: E402
from typer.testing import CliRunner  # noqa: E402
from verl import DataProto  # noqa: E402
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage  # noqa: E402
from verl.trainer.ppo.ray_trainer import RayPPOTrainer  # noqa: E402

from aepo.cli import app  # noqa: E402
from aepo.config import AlgoConfig, RunConfig  # noqa: E402
from aepo.core.assembly import assemble_aepo_batch  # noqa: E402
from aepo.core.controller import build_controller  # noqa: E402
from aepo.methods import METHODS  # noqa: E402
from aepo.verl_backend import launch as launch_mod  # noqa: E402
from aepo.verl_backend.agent_loop import row_sampling_params  # noqa: E402
from aepo.verl_backend.splice import ENTROPY_COLUMN, with_extra_groups  # noqa: E402
from aepo.verl_backend.trainer import AepoRayTrainer, _TemperatureRollout, algo_from_config  # noqa: E402
from aepo.verl_backend.translate import (AGENT_NAME, REWARD_MANAGER, TEMPERATURE_COLUMN, VerlPaths,  # noqa: E402
                                         compose, hydra_overrides)

REGISTRY_CHECK = ("import sys, verl\n"
                  "from verl.experimental.agent_loop.agent_loop import _agent_loop_registry as r\n"
                  "from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER as m\n"
                  "print('aepo_temperature_agent' in r, 'aepo.verl_backend.agent_loop' in sys.modules, 'aepo_response' in m)\n")


# ---- plugin registration ------------------------------------------------------------------------
def test_the_plugin_registers_the_agent_loop_in_a_fresh_process_that_only_imports_verl():
    out = subprocess.run([sys.executable, "-c", REGISTRY_CHECK], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-3:] == ["True", "True", "True"]


def test_the_plugin_registers_inside_a_ray_worker():
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        @ray.remote
        def registered() -> bool:
            import verl  # noqa: F401  (the entry point runs here, in the worker)
            from verl.experimental.agent_loop.agent_loop import _agent_loop_registry

            return AGENT_NAME in _agent_loop_registry

        assert ray.get(registered.remote(), timeout=300)
    finally:
        ray.shutdown()


# ---- the splice, against the embedded core ------------------------------------------------------
G, B_M_PROMPTS, B_X_PROMPTS, T = 4, 4, 2, 5


def rows(n: int, first_id: int, rewards: list[float], prompts: int) -> DataProto:
    """n rows; row identity in responses[:, 0]; each reward on the last response token."""
    responses = torch.arange(first_id, first_id + n)[:, None].repeat(1, T)
    mask = torch.ones(n, T)
    mask[::3, -1] = 0  # some responses one token shorter
    scores = torch.zeros(n, T)
    last = mask.sum(-1).long() - 1
    scores[torch.arange(n), last] = torch.tensor(rewards, dtype=torch.float)
    uid = np.array([f"p{i // G}" for i in range(n)], dtype=object)
    return DataProto.from_dict(tensors={"responses": responses, "response_mask": mask, "rm_scores": scores,
                                        "attention_mask": torch.ones(n, 3 + T)},
                               non_tensors={"uid": uid, "data_source": np.array(["aepo_tinylab"] * n, dtype=object)})


MAIN_R = [1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0]
EXTRA_R = [1, 1, 0, 0, 0, 1, 0, 0]


def main_batch() -> DataProto:
    b = rows(B_M_PROMPTS * G, 0, MAIN_R, B_M_PROMPTS)
    adv, ret = compute_grpo_outcome_advantage(b.batch["rm_scores"], b.batch["response_mask"], b.non_tensor_batch["uid"])
    b.batch["advantages"], b.batch["returns"] = adv, ret
    b.batch["old_log_probs"] = torch.zeros(len(b), T)
    b.batch["token_level_scores"] = b.batch["token_level_rewards"] = b.batch["rm_scores"]
    b.batch[ENTROPY_COLUMN] = torch.full((len(b), T), 0.7)
    return b


def fake_trainer(algo: AlgoConfig, monkeypatch, num_minibatches: int = 1) -> AepoRayTrainer:
    """An AepoRayTrainer without workers: the parent's old-log-prob and update calls are stubbed."""
    t = AepoRayTrainer.__new__(AepoRayTrainer)
    t.config = OmegaConf.create({"actor_rollout_ref": {"rollout": {"n": G},
                                                       "actor": {"loss_agg_mode": "seq-mean-token-mean",
                                                                 "ppo_mini_batch_size": B_M_PROMPTS // num_minibatches}},
                                 "trainer": {"default_local_dir": "/nonexistent"}})
    t.algo, t.extra_prompts, t.num_minibatches = algo, B_X_PROMPTS, num_minibatches
    t.spec = METHODS[algo.method]
    t.controller = build_controller(METHODS[algo.method], algo, 400)
    t.step_decision, t.extra_output, t.main_entropy = t.controller.decision, None, None
    t.warned_saturation = False

    def old_log_prob(self, batch):
        n = len(batch)
        return DataProto.from_dict(tensors={"old_log_probs": torch.zeros(n, T), "entropys": torch.full((n, T), 0.3)}), 0.0

    seen = {}

    def update_actor(self, batch):
        seen["batch"], seen["mini"] = batch, self.config.actor_rollout_ref.actor.ppo_mini_batch_size
        return DataProto.from_single_dict(data={}, meta_info={"metrics": {}})

    monkeypatch.setattr(RayPPOTrainer, "_compute_old_log_prob", old_log_prob)
    monkeypatch.setattr(RayPPOTrainer, "_update_actor", update_actor)
    t.seen = seen
    return t


def spliced_update(algo: AlgoConfig, monkeypatch, extra_rewards=EXTRA_R):
    """One `_update_actor` of a stubbed trainer on main_batch() plus extra rows 100, 101, ...:
    (trainer, what the parent's update received, the core's Splice on the same inputs)."""
    t = fake_trainer(algo, monkeypatch)
    t.extra_output = rows(B_X_PROMPTS * G, 100, extra_rewards, B_X_PROMPTS)
    t.main_entropy = 0.1
    t.output = t._update_actor(main_batch())
    return t, t.seen["batch"], core_splice(algo, main_batch())


def core_splice(algo: AlgoConfig, main: DataProto):
    main_adv = main.batch["advantages"][:, 0]  # GRPO puts one scalar on every token
    b_m = len(main)
    return assemble_aepo_batch(main_adv, torch.tensor(EXTRA_R, dtype=torch.float), G, algo.mode,
                               int(round(algo.alpha * b_m)), True, METHODS[algo.method].keep_negatives,
                               algo.halve_when_lowering)


@pytest.mark.parametrize("method", ["aepo", "aepo_with_negatives"])
def test_the_replace_splice_on_a_dataproto_gives_the_embedded_cores_rows_and_advantages(monkeypatch, method):
    algo = AlgoConfig(method=method, mode="replace", alpha=0.25, extra_layout="additional")
    t, out, want = spliced_update(algo, monkeypatch)
    got_rows = out.batch["responses"][:, 0]
    b_m = B_M_PROMPTS * G
    expect_rows = torch.where(want.rows < b_m, want.rows, 100 + want.rows - b_m)
    assert got_rows.tolist() == expect_rows.tolist()
    mask = out.batch["response_mask"]
    assert torch.allclose(out.batch["advantages"], want.advantages[:, None] * mask)
    # K = min(0.25 * 16, kept): 3 right answers in the mixed extra groups; the ablation keeps all 8 non-zero rows
    assert want.num_used == (3 if method == "aepo" else 4) and want.num_used > 0
    assert t.seen["mini"] == B_M_PROMPTS  # replace mode keeps verl's mini-batch size


def test_the_add_splice_carries_eq2_in_the_advantages_and_pads_to_whole_minibatches(monkeypatch):
    algo = AlgoConfig(method="aepo", mode="add", alpha=2.0, extra_layout="additional")
    t, out, want = spliced_update(algo, monkeypatch)
    b_m, b_x = B_M_PROMPTS * G, B_X_PROMPTS * G
    assert len(out) == b_m + b_x and t.seen["mini"] == B_M_PROMPTS + B_X_PROMPTS  # one mini-batch of all rows
    ids = out.batch["responses"][:, 0]
    n_core = len(want.rows)
    expect_rows = torch.where(want.rows < b_m, want.rows, 100 + want.rows - b_m)
    assert ids[:n_core].tolist() == expect_rows.tolist()
    kept = int(want.reinforce.sum())
    assert kept == 3  # the right answers of the two mixed extra groups
    seq_adv = out.batch["advantages"].sum(-1) / out.batch["response_mask"].sum(-1)
    M = b_m + b_x
    assert torch.allclose(seq_adv[:b_m], want.advantages[:b_m] * M / b_m)
    # Eq. 2's estimator (reinforce_norm all_samples): each kept row weighs alpha over all b_x temperature samples
    assert torch.allclose(seq_adv[b_m:n_core], torch.full((kept,), 2.0 * M / b_x))
    assert torch.all(seq_adv[n_core:] == 0)  # pads: the extra rows that were not kept


def eq2_rows(n_main_prompts: int = 4, n_extra_prompts: int = 4):
    torch.manual_seed(0)
    main_r = torch.randint(0, 2, (n_main_prompts * G,)).float()
    main_adv = compute_grpo_outcome_advantage(
        main_r[:, None].expand(-1, 1).clone(), torch.ones(len(main_r), 1),
        np.array([f"p{i // G}" for i in range(len(main_r))], dtype=object))[0][:, 0]
    extra_r = torch.tensor([1.0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1][: n_extra_prompts * G])
    return main_adv, extra_r


@pytest.mark.parametrize("norm", ["all_samples", "kept"])
@pytest.mark.parametrize("n", [1, 2, 4])
def test_verls_add_mode_minibatches_carry_both_terms_and_average_to_the_embedded_eq2_gradient(n, norm):
    """Issue 12.2, verl's assembly: each of verl's consecutive mini-batches of M rows holds main rows,
    its share of the kept rows and pads; the mean over mini-batches of the gradients of verl's loss
    ((1/M) sum seq-mean PPO loss with the advantages A') equals the embedded full-batch Eq. 2 gradient."""
    from aepo.core.assembly import loss_denominators, minibatches
    from aepo.core.losses import LossBatch, LossConfig, aepo_loss
    from aepo.verl_backend.splice import verl_update_rows

    main_adv, extra_r = eq2_rows()
    b_m, b_x, alpha = len(main_adv), len(extra_r), 2.0
    splice = assemble_aepo_batch(main_adv, extra_r, G, "add", 0, True)
    mask_all = torch.ones(b_m + b_x, T)
    mask_all[::3, -1] = 0
    d = loss_denominators(mask_all[splice.rows], splice.reinforce, "seq-mean-token-mean", norm, mask_all[b_m:])
    rows_, adv = verl_update_rows(splice, b_m, b_x, True, alpha, n, d.reinforce)
    logp = torch.randn(b_m + b_x, T, requires_grad=True)
    # embedded: the full batch, the whole batch's denominators
    emb = LossBatch(logp[splice.rows], logp[splice.rows].detach(), splice.advantages, mask_all[splice.rows],
                    torch.zeros(len(splice.rows), T), splice.reinforce, d.main, d.reinforce)
    want = torch.autograd.grad(aepo_loss(emb, LossConfig(alpha=alpha))[0], logp)[0]
    # verl: n consecutive mini-batches of M rows, PPO-clip seq-mean-token-mean over the M rows of each
    M = (b_m + b_x) // n
    assert len(rows_) == b_m + b_x and sorted(rows_.tolist()) == list(range(b_m + b_x))
    got = torch.zeros_like(logp)
    for k in range(n):
        r, a = rows_[k * M:(k + 1) * M], adv[k * M:(k + 1) * M]
        assert (r < b_m).sum() == b_m // n  # every mini-batch its share of main rows
        lp, m = logp[r], mask_all[r]
        ratio = torch.exp(lp - lp.detach())
        loss_v = ((-(a[:, None] * ratio) * m).sum(-1) / m.sum(-1)).sum() / M
        got += torch.autograd.grad(loss_v, logp)[0] / n
    assert torch.allclose(got, want, atol=1e-6)
    # and the embedded trainer's own minibatches agree with it
    emb_got = torch.zeros_like(logp)
    share = d.per_minibatch(n)
    for idx in minibatches(splice.reinforce, n):
        r = splice.rows[idx]
        b = LossBatch(logp[r], logp[r].detach(), splice.advantages[idx], mask_all[r], torch.zeros(len(r), T),
                      splice.reinforce[idx], share.main, share.reinforce)
        emb_got += torch.autograd.grad(aepo_loss(b, LossConfig(alpha=alpha))[0], logp)[0] / n
    assert torch.allclose(emb_got, want, atol=1e-6)


def test_both_backends_apply_one_decision_alike(monkeypatch):
    """Issue 12.11: the same decision (pi_alpha at strength 0.5, raising) gives the same rows and K_max in
    both backends, and verl's controller signal is the embedded trainer's batch entropy (per-response
    mean), whatever verl's loss_agg_mode."""
    from aepo.core.assembly import step_budget
    from aepo.core.controller import Decision
    from aepo.core.entropy import batch_entropy

    algo = AlgoConfig(method="aepo", mode="replace", alpha=0.25, extra_layout="additional", controller="pi_alpha")
    decision = Decision(target=0.5, temperature=1.5, raising=True, strength=0.5)
    t = fake_trainer(algo, monkeypatch)
    t.config.actor_rollout_ref.actor.loss_agg_mode = "token-mean"
    t.step_decision = decision
    t.extra_output = rows(B_X_PROMPTS * G, 100, EXTRA_R, B_X_PROMPTS)
    main = main_batch()
    entropys = torch.rand(len(main), T)

    def old_log_prob(self, batch):
        return DataProto.from_dict(tensors={"old_log_probs": torch.zeros(len(batch), T),
                                            "entropys": entropys[: len(batch)]}), 0.0

    monkeypatch.setattr(RayPPOTrainer, "_compute_old_log_prob", old_log_prob)
    t._compute_old_log_prob(main)
    assert t.main_entropy == pytest.approx(batch_entropy(entropys, main.batch["response_mask"]).item())
    t._update_actor(main)
    got = t.seen["batch"].batch["responses"][:, 0]
    b_m = len(main)
    budget = step_budget(decision, algo.alpha, b_m)
    assert budget.k_max == 2  # round(0.5 * 0.25 * 16)
    want = assemble_aepo_batch(main.batch["advantages"][:, 0], torch.tensor(EXTRA_R, dtype=torch.float), G,
                               "replace", budget.k_max, True)
    assert got.tolist() == torch.where(want.rows < b_m, want.rows, 100 + want.rows - b_m).tolist()
    assert t.seen["batch"].batch["responses"].shape[0] == b_m
    # the extra groups: all P_x prompts go out whatever the strength, as in the embedded trainer
    combined = with_extra_groups(main_batch(), B_X_PROMPTS, G, decision.temperature)
    assert len(combined) == b_m + B_X_PROMPTS * G


def test_a_step_without_kept_samples_trains_as_plain_grpo(monkeypatch):
    algo = AlgoConfig(method="aepo", mode="replace", alpha=0.25, extra_layout="additional")
    t, out, _ = spliced_update(algo, monkeypatch, extra_rewards=[0.0] * (B_X_PROMPTS * G))
    assert out.batch["responses"][:, 0].tolist() == list(range(B_M_PROMPTS * G))
    assert t.output.meta_info["metrics"]["controller/no_sample"] == 1.0


def test_the_controller_reads_the_main_rows_entropy_and_its_state_rides_in_the_checkpoint(monkeypatch, tmp_path):
    algo = AlgoConfig(method="aepo", mode="replace", alpha=0.25, extra_layout="additional", entropy_target=0.5)
    t = fake_trainer(algo, monkeypatch)
    main = main_batch()
    t._compute_old_log_prob(main)  # stubbed parent: entropy 0.3 on every token of the main rows
    assert t.main_entropy == pytest.approx(0.3)
    t.extra_output = rows(B_X_PROMPTS * G, 100, EXTRA_R, B_X_PROMPTS)
    out = t._update_actor(main)
    assert out.meta_info["metrics"]["controller/target"] == 0.5
    assert t.controller.last_entropy == pytest.approx(0.3) and t.controller.decision.raising
    # save beside verl's checkpoint, restore into a fresh trainer
    t.config.trainer.default_local_dir = str(tmp_path)
    t.global_steps = 7
    monkeypatch.setattr(RayPPOTrainer, "_save_checkpoint", lambda self: None)
    monkeypatch.setattr(RayPPOTrainer, "_load_checkpoint", lambda self: setattr(self, "global_steps", 7))
    t._save_checkpoint()
    fresh = fake_trainer(algo, monkeypatch)
    fresh.config.trainer.default_local_dir = str(tmp_path)
    fresh._load_checkpoint()
    assert fresh.controller.state_dict() == t.controller.state_dict()


def test_entropy_adv_shapes_the_advantages_with_the_old_pass_entropy(monkeypatch):
    from aepo.core.advantages import entropy_shaped_advantages

    algo = AlgoConfig(method="entropy_adv", adv_beta=0.4, adv_kappa=2.0)
    t = fake_trainer(algo, monkeypatch)
    main = main_batch()
    before = main.batch["advantages"].clone()
    t._update_actor(main)
    got = t.seen["batch"].batch["advantages"]
    want = entropy_shaped_advantages(before, torch.full_like(before, 0.7), 0.4, 2.0) * main.batch["response_mask"]
    assert torch.allclose(got, want)
    assert ENTROPY_COLUMN not in t.seen["batch"].batch.keys()  # not shipped to the workers


def test_entrocraft_on_verl_rewrites_the_advantages_by_its_deadband_and_feeds_the_controller(monkeypatch):
    algo = AlgoConfig(method="entrocraft", entropy_target=3.0)  # far above: the deadband says -1 (wrong answers)
    t = fake_trainer(algo, monkeypatch)
    main = main_batch()
    t._compute_old_log_prob(main)  # stubbed: entropy 0.3 -> below the band
    t._update_actor(main)  # step 1: before any measurement the decision is 0 (GRPO)
    assert torch.equal(t.seen["batch"].batch["advantages"], main_batch().batch["advantages"])
    out = t._update_actor(main_batch())  # step 2: below the band -> NSR, A = R - 1 on every token
    mask = t.seen["batch"].batch["response_mask"]
    want = (torch.tensor(MAIN_R, dtype=torch.float) - 1.0)[:, None] * mask
    assert torch.equal(t.seen["batch"].batch["advantages"], want)
    assert out.meta_info["metrics"]["controller/advantage_sign"] == -1.0


# ---- per-row temperature -------------------------------------------------------------------------
def test_the_temperature_groups_go_out_in_the_same_rollout_call_and_validation_is_untouched():
    calls = []

    class Inner:
        def generate_sequences(self, batch):
            calls.append((len(batch), batch.non_tensor_batch.get(TEMPERATURE_COLUMN)))
            return DataProto.concat([batch])  # a new batch, as a rollout returns

    t = AepoRayTrainer.__new__(AepoRayTrainer)
    t.config = OmegaConf.create({"actor_rollout_ref": {"rollout": {"n": G}}})
    t.spec, t.extra_prompts = METHODS["aepo"], B_X_PROMPTS
    t.controller = build_controller(METHODS["aepo"], AlgoConfig(t_high=1.5), 400)
    wrapper = _TemperatureRollout(Inner(), t)
    gen = rows(B_M_PROMPTS * G, 0, MAIN_R, B_M_PROMPTS)
    main = wrapper.generate_sequences(gen)
    assert len(calls) == 1 and calls[0][0] == (B_M_PROMPTS + B_X_PROMPTS) * G
    temps = calls[0][1]
    assert np.isnan(temps[: B_M_PROMPTS * G]).all() and (temps[B_M_PROMPTS * G:] == 1.5).all()
    assert len(main) == B_M_PROMPTS * G and TEMPERATURE_COLUMN not in main.non_tensor_batch
    assert TEMPERATURE_COLUMN not in gen.non_tensor_batch  # the caller's batch is left as it was
    assert t.extra_output.batch["responses"][:, 0].tolist() == list(range(B_X_PROMPTS * G))  # first P_x groups
    val = rows(8, 0, [0] * 8, 2)
    val.meta_info["validate"] = True
    wrapper.generate_sequences(val)
    assert calls[1] == (8, None)


def test_the_agent_loop_overrides_the_temperature_only_for_rows_that_carry_one():
    base = {"temperature": 1.0, "top_p": 1.0}
    assert row_sampling_params(base, 1.5)["temperature"] == 1.5
    assert row_sampling_params(base, np.float64(0.8))["temperature"] == 0.8
    assert row_sampling_params(base, float("nan")) is base
    assert row_sampling_params(base, None) is base


def test_verls_agent_loop_worker_sends_each_row_its_own_temperature_and_validation_the_val_kwargs(tiny_model_dir, tmp_path):
    """The real AgentLoopWorker and our registered loop, down to the LLM server call (faked)."""
    from verl.experimental.agent_loop import agent_loop as al
    from verl.workers.rollout.replica import TokenOutput

    cfg = compose(hydra_overrides(tinylab_config(), tinylab_paths(tiny_model_dir, tmp_path)))
    seen = []

    class FakeServer:
        async def generate(self, request_id, prompt_ids, sampling_params, **kw):
            seen.append((tuple(prompt_ids), sampling_params["temperature"]))
            return TokenOutput(token_ids=[5, 6], log_probs=[-0.1, -0.2])

    worker = al.AgentLoopWorker(cfg, FakeServer())

    async def done(self, output, validate, **kwargs):  # stop after the server call
        return output

    worker._agent_loop_postprocess = done.__get__(worker)
    worker._postprocess = lambda outputs, **kw: outputs
    prompts = [[{"role": "user", "content": "12="}], [{"role": "user", "content": "13="}]]
    batch = DataProto.from_dict(non_tensors={"raw_prompt": np.array(prompts + prompts, dtype=object)})
    batch = with_extra_groups(batch.select_idxs(np.arange(2)), 1, 1, 1.5)  # 2 main rows + 1 extra row
    asyncio.run(worker.generate_sequences(batch))
    by_prompt: dict[tuple, list] = {}
    for ids, temperature in seen:  # the requests run concurrently: compare per prompt, not in order
        by_prompt.setdefault(ids, []).append(temperature)
    assert sorted(sorted(t) for t in by_prompt.values()) == [[1.0], [1.0, 1.5]]  # "13=" main; "12=" main + extra
    seen.clear()
    val = DataProto.from_dict(non_tensors={"raw_prompt": np.array(prompts, dtype=object)}, meta_info={"validate": True})
    asyncio.run(worker.generate_sequences(val))
    assert [t for _, t in seen] == [0, 0]  # verl's val_kwargs (greedy)


def test_verls_reward_manager_reads_a_response_up_to_its_stop_token_with_its_special_tokens(tiny_model_dir, tmp_path):
    """verl's own managers decode with skip_special_tokens, which paid 'x+y<bos><bos>...': a toolkit
    run's manager, loaded by verl's own loader from the generated config, reads what the embedded
    trainer reads."""
    from transformers import AutoTokenizer
    from verl.trainer.ppo.reward import load_reward_manager

    cfg = compose(hydra_overrides(tinylab_config(), tinylab_paths(tiny_model_dir, tmp_path)))
    assert cfg.reward.reward_manager.name == REWARD_MANAGER
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    manager = load_reward_manager(cfg, tok)
    bos, eos, pad = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
    digits = lambda s: [tok.convert_tokens_to_ids(c) for c in s]  # noqa: E731
    prompt = tok("<bos>37=", add_special_tokens=False).input_ids

    def reward(response: list[int], length: int) -> float:  # length: the valid tokens, as verl's mask says
        width = 8
        ids = torch.tensor([response + [pad] * (width - len(response))])
        mask = torch.tensor([[1] * len(prompt) + [1] * length + [0] * (width - length)])
        row = DataProto.from_dict(tensors={"prompts": torch.tensor([prompt]), "responses": ids, "attention_mask": mask},
                                  non_tensors={"data_source": np.array(["aepo_tinylab"], dtype=object),
                                               "reward_model": np.array([{"ground_truth": "37"}], dtype=object)})
        return asyncio.run(manager.run_single(row))["reward_score"]

    assert reward(digits("12+25") + [eos], 6) == 1.0            # stopped: right
    assert reward(digits("12+25") + [bos, bos, bos], 8) == 0.0  # never stopped, special tokens to the cap
    assert reward(digits("12+25") + [pad, eos], 7) == 0.0       # a pad it wrote itself before the stop
    assert reward(digits("12+24") + [eos], 6) == 0.0            # wrong sum


# ---- config translation -----------------------------------------------------------------------------
def tinylab_config(**algo) -> RunConfig:
    base = {"algo.extra_layout": "additional", "algo.mode": "replace", "algo.alpha": 0.1, "verl.gpus_per_node": 1,
            "rollout.prompts_per_step": 8, "optim.num_minibatches": 2}
    return RunConfig().with_overrides({**base, **{f"algo.{k}": v for k, v in algo.items()}}).validate()


def tinylab_paths(model_dir: Path, tmp_path: Path) -> VerlPaths:
    from aepo.verl_backend.data import TINYLAB_CHAT_TEMPLATE

    return VerlPaths(tmp_path / "run", str(model_dir), tmp_path / "train.parquet", None, TINYLAB_CHAT_TEMPLATE)


def test_the_generated_config_composes_with_verls_hydra_config_and_instantiates_its_dataclasses(tiny_model_dir, tmp_path):
    from verl.utils.config import omega_conf_to_dataclass
    from verl.workers.config import FSDPActorConfig, HFModelConfig, RolloutConfig

    cfg = tinylab_config(entropy_target=0.35, t_high=1.2)
    c = compose(hydra_overrides(cfg, tinylab_paths(tiny_model_dir, tmp_path)))
    actor = omega_conf_to_dataclass(c.actor_rollout_ref.actor)
    rollout = omega_conf_to_dataclass(c.actor_rollout_ref.rollout)
    model = omega_conf_to_dataclass(c.actor_rollout_ref.model)
    assert isinstance(actor, FSDPActorConfig) and isinstance(rollout, RolloutConfig) and isinstance(model, HFModelConfig)
    assert actor.ppo_mini_batch_size == 4 and actor.clip_ratio == 0.2 and actor.loss_agg_mode == "seq-mean-token-mean"
    assert rollout.n == cfg.rollout.group_size and c.data.train_batch_size == 8
    assert model.tokenizer.apply_chat_template([{"role": "user", "content": "12="}], tokenize=False) == "<bos>12="
    algo, p_x, nmb = algo_from_config(c)
    assert algo == cfg.algo and p_x == cfg.derived()["extra_prompts"] and nmb == 2
    assert c.trainer.use_v1 is False and c.algorithm.adv_estimator == "grpo"
    assert c.actor_rollout_ref.rollout.agent.default_agent_loop == AGENT_NAME


@pytest.mark.parametrize("method,key,value", [("entropy_reg", "actor_rollout_ref.actor.entropy_coeff", 0.03),
                                              ("clip_higher", "actor_rollout_ref.actor.clip_ratio_high", 0.28),
                                              ("clip_cov", "actor_rollout_ref.actor.policy_loss.loss_mode", "clip_cov"),
                                              ("kl_cov", "actor_rollout_ref.actor.policy_loss.loss_mode", "kl_cov"),
                                              ("grpo", "actor_rollout_ref.actor.entropy_coeff", 0.0)])
def test_baselines_map_to_verls_own_knobs(tmp_path, method, key, value):
    cfg = RunConfig().with_overrides({"algo.method": method, "backend": "verl"}).validate()
    c = compose(hydra_overrides(cfg, VerlPaths(tmp_path, "m", tmp_path / "t.parquet", None)))
    node = c
    for part in key.split("."):
        node = node[part]
    assert node == value


def test_wandb_mode_reaches_verl_and_the_api_key_never_enters_the_command(tmp_path, monkeypatch):
    from aepo.verl_backend.translate import command

    monkeypatch.setenv("WANDB_API_KEY", "secret-key-123")
    cfg = RunConfig().with_overrides({"backend": "verl", "algo.method": "grpo", "wandb": "auto",
                                      "wandb_group": "sweepA"}).validate()
    argv = command(cfg, VerlPaths(tmp_path, "m", tmp_path / "t.parquet", None))
    c = compose(argv[3:-1])  # the Hydra overrides (not `python -m ...` nor hydra.run.dir)
    assert list(c.trainer.logger) == ["console", "file", "wandb"]
    assert c.ray_kwargs.ray_init.runtime_env.env_vars.WANDB_MODE == "online"
    assert c.ray_kwargs.ray_init.runtime_env.env_vars.WANDB_RUN_GROUP == "sweepA"
    assert not any("secret-key-123" in a for a in argv)
    off = RunConfig().with_overrides({"backend": "verl", "algo.method": "grpo", "wandb": "off"}).validate()
    ov = hydra_overrides(off, VerlPaths(tmp_path, "m", tmp_path / "t.parquet", None))
    assert "trainer.logger=[console,file]" in ov and not any("WANDB_MODE" in o for o in ov)


def test_verl_dual_clips_as_the_config_says_and_saves_hugging_face_weights_for_aepo_eval(tmp_path):
    paths = VerlPaths(tmp_path, "m", tmp_path / "t.parquet", None)
    off = compose(hydra_overrides(RunConfig().with_overrides({"backend": "verl", "algo.method": "grpo"}).validate(), paths))
    on = compose(hydra_overrides(RunConfig().with_overrides({"backend": "verl", "algo.method": "grpo",
                                                             "optim.dual_clip_c": 3.0}).validate(), paths))
    assert off.actor_rollout_ref.actor.clip_ratio_c == 1e9 and on.actor_rollout_ref.actor.clip_ratio_c == 3.0
    assert "hf_model" in on.actor_rollout_ref.actor.checkpoint.save_contents


@pytest.mark.parametrize("sets,message", [
    (["algo.extra_layout=in_place"], "extra_layout=additional"),
    (["algo.extra_layout=additional", "rollout.temperature=0.9"], "rollout.temperature must be 1"),
    (["algo.extra_layout=additional", "algo.mode=add", "optim.num_minibatches=3"], "multiple of num_minibatches"),
    (["algo.extra_layout=additional"], "use --backend embedded"),
    (["verl.gpu_memory_utilization=1.5"], "gpu_memory_utilization"),
])
def test_configs_verl_cannot_run_are_refused_before_launch(tmp_path, sets, message):
    args = ["train", "--backend", "verl", "--dry-run", "--out", str(tmp_path / "r")]
    if message == "use --backend embedded":
        args += ["--method", "entropy_adaptive"]
    for s in sets:
        args += ["--set", s]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and message in res.output, res.output


def test_embedded_only_methods_are_refused_by_the_verl_backend(tmp_path):
    for method in ("entropic", "entropy_adaptive"):
        res = CliRunner().invoke(app, ["train", "--method", method, "--backend", "verl", "--dry-run",
                                       "--out", str(tmp_path / "r"), "--wandb", "off"])
        assert res.exit_code == 2 and "use --backend embedded" in res.output


def test_paper_sweep_dry_run_renders_the_full_verl_command_line(tmp_path):
    res = CliRunner().invoke(app, ["sweep", "entropy-targets", "--config", "sweeps/paper.yaml", "--out",
                                   str(tmp_path / "paper"), "--dry-run"])
    assert res.exit_code == 0, res.output
    first = res.output.split("# aepo__H0.25__a0.0234375__s0")[1].split("\n# ")[0]
    for piece in ("-m aepo.verl_backend.main", "actor_rollout_ref.model.path=Qwen/Qwen2.5-Math-7B",
                  "data.train_batch_size=512", "actor_rollout_ref.rollout.n=5", "actor_rollout_ref.actor.optim.lr=1e-06",
                  "data.max_response_length=2048", "actor_rollout_ref.actor.ppo_mini_batch_size=128",
                  "+aepo.mode=replace", "+aepo.alpha=0.0234375", "+aepo.t_high=1.2", "+aepo.entropy_target=0.25",
                  "+aepo.extra_prompts=128", "trainer.n_gpus_per_node=8"):
        assert piece in first, piece
    assert res.output.count("-m aepo.verl_backend.main") == 9


# ---- launcher records -----------------------------------------------------------------------------------
def test_verl_logs_become_toolkit_metrics_and_a_resumed_steps_later_record_wins(tmp_path):
    def line(step, **data):
        return json.dumps({"step": step, "data": data}) + "\n"

    (tmp_path / "verl_metrics.0.jsonl").write_text(
        line(0, **{"val-core/aepo_tinylab/reward/mean@1": 0.1}) + line(1, **{"actor/entropy": 0.9}) +
        line(2, **{"actor/entropy": 0.8, "timing_s/step": 1.0}) + '{"step": 3, "da')
    (tmp_path / "verl_metrics.jsonl").write_text(
        line(2, **{"actor/entropy": 0.7, "timing_s/step": 1.0, "perf/mfu/actor": 0.3}) +
        line(3, **{"actor/entropy": 0.6, "controller/target": 0.5, "val-core/aepo_tinylab/reward/mean@1": 0.25}))
    assert launch_mod.write_toolkit_metrics(tmp_path) == 3
    got = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert got == [{"step": 1, "actor/entropy": 0.9},
                   {"step": 2, "actor/entropy": 0.7, "timing_s/step": 1.0},
                   {"step": 3, "actor/entropy": 0.6, "controller/target": 0.5, "val/tinylab/accuracy": 0.25}]


def test_without_verl_the_backend_says_how_to_install_it(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "verl" else real(name, *a))
    res = CliRunner().invoke(app, ["train", "--backend", "verl", "--set", "algo.extra_layout=additional",
                                   "--out", str(tmp_path / "r"), "--wandb", "off"])
    assert res.exit_code == 2 and "pip install 'aepo[verl]'" in res.output
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_a_cpu_launch_reaches_verls_gpu_check_through_the_aepo_task_runner_and_is_recorded_as_failed(tmp_path):
    """Everything before the GPU: the command parses in verl's Hydra main, Ray starts, the AEPO
    task runner builds the datasets and the AEPO trainer, and verl's resource check stops it."""
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "--backend", "verl", "--steps", "2", "--out", str(out), "--wandb", "off",
                                   "--set", "algo.extra_layout=additional", "--set", "verl.gpus_per_node=1",
                                   "--set", "rollout.prompts_per_step=4"])
    assert res.exit_code == 1, res.output  # a failed run fails the command (issue 12.9), in one line
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Total available GPUs 0" in errors[0] and "Traceback" not in res.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "failed" and "Total available GPUs 0" in result["error"]
    assert "AEPO task runner" in (out / "verl.log").read_text()
    assert (out / "metrics.jsonl").exists() and (out / "verl_data" / "train.parquet").exists()


# ---- GPU end to end -------------------------------------------------------------------------------------
def _gpu_with_vllm() -> bool:
    import importlib.util

    return torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_with_vllm(), reason="needs a CUDA GPU and vLLM")
def test_a_few_aepo_steps_on_the_tiny_model_through_verl(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "--backend", "verl", "--steps", "4", "--out", str(out), "--wandb", "off",
                                   "--set", "algo.extra_layout=additional", "--set", "algo.mode=add",
                                   "--set", "verl.gpus_per_node=1", "--set", "verl.micro_batch_per_gpu=32",
                                   "--set", "verl.gradient_checkpointing=false", "--set", "save_every=2",
                                   "--set", "eval_every=2"])
    result = json.loads((out / "result.json").read_text())
    print(json.dumps(result, indent=1)[:3000])
    assert result["status"] == "finished", (out / "verl.log").read_text()[-5000:]
    rows_ = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    print(rows_)
    assert [r["step"] for r in rows_] == [1, 2, 3, 4]
    assert all("actor/entropy" in r and "controller/temperature" in r for r in rows_)
    assert any(r.get("controller/num_kept_samples", 0) > 0 for r in rows_)
    assert (out / "checkpoints" / "global_step_2" / "aepo_controller.json").is_file()
    assert res.exit_code == 0


def test_verls_aepo_keeps_only_right_main_answers_on_a_positive_only_lowering_step(monkeypatch):
    """Issue 17.4 on verl: a lowering decision marked +1 gives the main rows A = R (unnormalised), as the
    embedded trainer's sign_filtered_advantages does; the extra rows are spliced as on any step."""
    from aepo.core.controller import Decision

    algo = AlgoConfig(method="aepo", mode="add", alpha=1.0, extra_layout="additional", lowering="positive_only")
    t = fake_trainer(algo, monkeypatch)
    t.step_decision = Decision(target=0.5, temperature=0.8, raising=False, strength=1.0, advantage_sign=1)
    t.extra_output = rows(B_X_PROMPTS * G, 100, EXTRA_R, B_X_PROMPTS)
    t.main_entropy = 0.9
    t._update_actor(main_batch())
    out = t.seen["batch"]
    ids, adv, mask = out.batch["responses"][:, 0], out.batch["advantages"], out.batch["response_mask"]
    main = ids < 100
    assert main.sum().item() == len(MAIN_R)
    per_row = ((adv * mask).sum(-1) / mask.sum(-1))[main]  # one scalar per response
    right = torch.tensor([MAIN_R[i] for i in ids[main].tolist()], dtype=torch.bool)
    assert per_row[~right].abs().max().item() == 0.0  # wrong answers: A = 0, not GRPO's negative advantage
    # right answers: A = R = 1, times add mode's one row-share factor (B_m + B_x) / B_m on verl's mean
    assert per_row[right].tolist() == pytest.approx([(len(MAIN_R) + len(EXTRA_R)) / len(MAIN_R)] * int(right.sum()))
