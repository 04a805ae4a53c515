"""The embedded trainer: one readable loop, top to bottom.

Per step (arXiv 2510.08141; departures from the reference code are marked *):
  1. Pick P prompts. The controller's decision (from the previous step's entropy) sets the
     temperature T of the extra groups.
  2. ONE sampling call: main groups at T = 1 and extra groups at T, per-row temperature (*).
     in_place layout: the extra groups take the place of f*P main groups (no added cost) (*).
  3. Rewards; GRPO advantages of the main groups; AEPO splice (replace or add mode).
  4. The controller's signal: exact T = 1 entropy of the on-policy main rows (*), read off the
     sampling logits; the reference's -mean log p estimator is logged beside it.
  5. One PPO-clip update (old log-probs = the sampler's T = 1 log-probs: no recomputed forward).
Checkpoints every N steps and on exit; `resume=True` continues bit-for-bit on CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch

from aepo.config import ConfigError, RunConfig
from aepo.core.advantages import grpo_advantages, sign_filtered_advantages
from aepo.core.assembly import (Denominators, Splice, assemble_aepo_batch, loss_denominators, minibatches,
                                step_budget)
from aepo.core.controller import build_controller
from aepo.core.entropy import batch_entropy, entropy_from_logprobs, sampled_logprob_estimate, sequence_mean
from aepo.core.losses import LOSSES, LossBatch, LossConfig
from aepo.core.pistar import extra_sampling
from aepo.embedded import checkpoint as ckpt
from aepo.embedded.model import load_model, resolve_device
from aepo.embedded.sampler import Rollout, response_logits, sample, scored_by
from aepo.methods import METHODS
from aepo import rundir
from aepo.rundir import CONFIG, METRICS, RESULT, prepare, provenance, result_record, truncate_metrics, write_json_atomic
from aepo.runlog import RunLogger
from aepo.tasks.models import resolve_model_dir
from aepo.tasks.prompts import Task, load_task, prompt_texts, uses_chat
from aepo.tasks.responses import response_texts, stop_ids

Progress = Callable[[int, int, dict[str, Any]], None]  # (step, total, record)
NO_CUT = {"top_p": 1.0, "min_p": 0.0}  # a sampler threshold that keeps every token (the main rows')


# ---- one step's pieces -----------------------------------------------------------------------
def encode_prompts(tokenizer, task: Task, items: list[dict[str, str]], chat: bool, max_tokens: int) -> list[list[int]]:
    """Token ids of the items' prompts (task template, then the chat template when `chat`: its
    text already holds the model's special tokens), left-truncated to max_tokens."""
    texts = prompt_texts(tokenizer, task.template, [it["problem"] for it in items], chat)
    ids = tokenizer(texts, add_special_tokens=not chat).input_ids
    return [x[-max_tokens:] for x in ids]


def left_pad(seqs: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """-> ids (B, L), mask (B, L), left-padded."""
    L = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), L), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, L - len(s):] = torch.tensor(s)
        mask[i, L - len(s):] = 1
    return ids.to(device), mask.to(device)


def pick_rows(ids: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of the once-padded prompt table, trimmed to the longest picked prompt: exactly what
    `left_pad` of those prompts gives, without a Python loop per row. ids, mask: (N, L); rows: (B,)."""
    ids, mask = ids[rows], mask[rows]  # (B, L)
    width = int(mask.sum(-1).max())
    return ids[:, ids.shape[1] - width:], mask[:, mask.shape[1] - width:]


def step_rngs(seed: int, step: int) -> tuple[random.Random, torch.Generator]:
    """Prompt-order and sampling RNGs that depend on (seed, step) only: resumable for free."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return random.Random(f"{seed}/{step}"), g


def rewards_of(task: Task, tokenizer, rollout: Rollout, answers: list[str], stops: list[int]) -> torch.Tensor:
    texts = response_texts(tokenizer, rollout.response_ids, stops)  # (special tokens inside a response count)
    return torch.tensor([task.reward(a, t) for a, t in zip(answers, texts)])


def generate(model, teacher, ids: torch.Tensor, mask: torch.Tensor, temps: torch.Tensor, cfg: RunConfig,
             eos: list[int], pad_id: int, b_m: int, g: torch.Generator | None, cuts: dict) -> Rollout:
    """One step's rollout: one sampling call with per-row temperature (and cut); with a teacher,
    its rows (those from b_m on) are its own call, then scored by the policy (old log-probs, entropy)."""
    n = cfg.rollout.max_new_tokens
    if teacher is None:
        return sample(model, ids, mask, temps, n, eos, pad_id, generator=g, **cuts)
    mine = sample(model, ids[:b_m], mask[:b_m], temps[:b_m], n, eos, pad_id, generator=g)
    theirs = sample(teacher, ids[b_m:], mask[b_m:], temps[b_m:], n, eos, pad_id, generator=g)
    return mine.then(scored_by(model, theirs), pad_id)


def mixed_precision(autocast: str, device: torch.device) -> Callable[[], Any]:
    """model.autocast: a factory of fresh contexts, torch.autocast in bfloat16 or a no-op."""
    if autocast == "bfloat16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def plain_splice(main_adv: torch.Tensor) -> Splice:
    b = main_adv.shape[0]
    return Splice(torch.arange(b), main_adv.float(), torch.zeros(b, dtype=torch.bool), 0, 0, aepo=False)


# ---- the run -----------------------------------------------------------------------------------
def train(cfg: RunConfig, resume: bool = False, progress: Progress | None = None,
          log: Callable[[str], None] = print, lock: bool = True) -> dict[str, Any]:
    """Run (or resume) one training run; returns the result record (also in result.json).

    The run directory is this process's for the whole run (`aepo.rundir.lock`; `lock=False`:
    the caller, a sweep worker, holds it); a second process on it gets a one-line error."""
    cfg.validate()
    if not lock:
        return _train(cfg, resume, progress, log)
    with rundir.lock(Path(cfg.out)) as mine:
        if not mine:
            owner = rundir.lock_owner(Path(cfg.out)) or {}
            raise rundir.RunDirError(f"run directory {cfg.out} is in use by another process (pid {owner.get('pid')} "
                                     f"on {owner.get('host')}): wait for it to end or choose another --out")
        return _train(cfg, resume, progress, log)


def _train(cfg: RunConfig, resume: bool, progress: Progress | None, log: Callable[[str], None]) -> dict[str, Any]:
    out, state = prepare(cfg, resume, log)
    if state is not None and state["step"] >= cfg.steps and (out / RESULT).is_file():
        return json.loads((out / RESULT).read_text())  # already finished
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.model.device)
    model_dir = resolve_model_dir(cfg.model.name_or_path, log=log)
    task = load_task(cfg.data, Path(model_dir))
    load_from = str(out / ckpt.CHECKPOINT) if state is not None else model_dir
    model, tok = load_model(load_from, cfg.model.dtype, device)
    chat = uses_chat(tok, cfg.data.chat_template)  # instruct models: prompts as a chat turn
    teacher = (load_teacher(cfg.algo.teacher_model, tok, cfg.model.dtype, device, log)
               if cfg.algo.target_distribution == "teacher" else None)
    spec, d = METHODS[cfg.algo.method], cfg.derived()
    loss_fn = LOSSES[spec.loss]
    loss_cfg = LossConfig(clip_eps=cfg.optim.clip_eps, agg_mode=cfg.optim.loss_agg_mode, alpha=cfg.algo.alpha,
                          entropy_coef=cfg.algo.entropy_coef, adv_beta=cfg.algo.adv_beta,
                          adv_kappa=cfg.algo.adv_kappa, dual_clip_c=cfg.optim.dual_clip_c,
                          clip_eps_high=cfg.algo.clip_eps_high, cov_ratio=cfg.algo.cov_ratio,
                          clip_cov_low=cfg.algo.clip_cov_low, clip_cov_high=cfg.algo.clip_cov_high,
                          kl_cov_coef=cfg.algo.kl_cov_coef, entropic_high_prob=cfg.algo.entropic_high_prob)
    # fused: one kernel for all parameters instead of a Python loop over them (issue 7; same math,
    # rounding differs from the loop by ~1e-8)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                                  fused=device.type in ("cpu", "cuda"))
    a = cfg.algo
    controller = build_controller(spec, a, cfg.steps)
    start, wall_before = 0, 0.0
    if state is not None:
        ckpt.load_optimizer(out, optimizer)
        controller.load_state_dict(state["controller"])
        start, wall_before = state["step"], state.get("wall_time_s", 0.0)
        truncate_metrics(out / METRICS, start)
        log(f"resuming {out} from step {start}")
    elif (out / METRICS).exists():  # resumed before its first checkpoint: start over
        truncate_metrics(out / METRICS, 0)
    write_json_atomic(out / CONFIG, {"config": cfg.to_dict(), "derived": d, "model_dir": model_dir,
                                            "task": task.name, "chat_template": chat, "aepo_mode": cfg.algo.mode if spec.extra_samples
                                            else None, **provenance()})
    prompt_ids = encode_prompts(tok, task, task.train, chat, cfg.data.max_prompt_tokens)
    all_ids, all_mask = left_pad(prompt_ids, tok.pad_token_id, device)  # (N, L), padded once
    logger = RunLogger(out, cfg.to_dict(), cfg.wandb, cfg.wandb_project, cfg.wandb_group)
    G, P = cfg.rollout.group_size, cfg.rollout.prompts_per_step
    eos = stop_ids(tok, model.generation_config)
    amp = mixed_precision(cfg.model.autocast, device)  # amp(): a context for every forward pass
    done, t_start, status, error = start, time.time(), "failed", None
    # dirty: the model, optimizer or controller have moved past step `done` (a step's update ran
    # but its record is not written yet); such a state is never saved under the label `done`
    dirty = False
    warned_saturation = False

    def save(step_done: int) -> None:
        path = ckpt.save_checkpoint(out, model, tok, optimizer, {
            "step": step_done, "controller": controller.state_dict(),
            "wall_time_s": wall_before + time.time() - t_start})
        if (Path(model_dir) / "tinylab.json").is_file():  # so `aepo eval` knows the task
            shutil.copy(Path(model_dir) / "tinylab.json", path / "tinylab.json")

    try:
        for step in range(start + 1, cfg.steps + 1):
            t0 = time.time()
            rng, gen = step_rngs(cfg.seed, step)
            # -- 1. prompts and the plan of one sampling call
            picks = rng.sample(range(len(task.train)), min(P, len(task.train)))
            decision = controller.decision
            n_x = d["extra_prompts"]  # every step samples all f * P extra prompts (0 without extras)
            if cfg.algo.extra_layout == "in_place":
                main_p, extra_p = picks[: len(picks) - n_x], picks[len(picks) - n_x:]
            else:
                main_p, extra_p = picks, picks[:n_x]
            # pi*: the extra rows' T (the no-temperature ablation's fixed budget: 1.0) and any cut of
            # their tail (target_distribution top_p / min_p, aepo/core/pistar.py)
            pistar = extra_sampling(cfg.algo.target_distribution, decision, cfg.algo)
            rows = [p for p in main_p for _ in range(G)] + [p for p in extra_p for _ in range(G)]
            b_m, b_x = len(main_p) * G, len(extra_p) * G
            temps = torch.tensor([cfg.rollout.temperature] * b_m + [pistar.temperature] * b_x)
            cut = cfg.algo.target_distribution  # top_p / min_p: the sampler cuts only the extra rows' tails
            cuts = {cut: torch.tensor([NO_CUT[cut]] * b_m + [getattr(pistar, cut)] * b_x)} if cut in NO_CUT else {}
            # -- 2. one generation call, per-row temperature (and cut)
            model.eval()
            ids, mask = pick_rows(all_ids, all_mask, torch.tensor(rows, device=device))
            g = gen if device.type == "cpu" else None
            with amp():
                roll = generate(model, teacher, ids, mask, temps, cfg, eos, tok.pad_token_id, b_m, g, cuts)
            roll = roll.to("cpu")
            t_gen = time.time()
            # -- 3. rewards, advantages, splice
            rewards = rewards_of(task, tok, roll, [task.train[p]["answer"] for p in rows], eos)  # (B,)
            t_reward = time.time()
            main_adv = grpo_advantages(rewards[:b_m], G)
            # entrocraft's deadband, or AEPO's positive_only lowering, picks the samples by sign (0: GRPO's)
            main_adv = sign_filtered_advantages(rewards[:b_m], main_adv, decision.advantage_sign)
            # the controller's strength scales the regularization budget (bang-bang: always 1);
            # and the decision sets what its method's loss reads (entropy_adaptive's coefficient, ...)
            budget = step_budget(decision, cfg.algo.alpha, b_m)
            step_cfg = dataclasses.replace(loss_cfg, alpha=budget.alpha, **decision.loss_overrides())
            if spec.extra_samples:
                splice = assemble_aepo_batch(main_adv, rewards[b_m:], G, cfg.algo.mode, budget.k_max,
                                             decision.raising, spec.keep_negatives, cfg.algo.halve_when_lowering)
            else:
                splice = plain_splice(main_adv)
            # -- 4. the controller's signal: exact T = 1 entropy of the on-policy main rows
            main_mask = roll.response_mask[:b_m]
            h_main = batch_entropy(roll.entropy[:b_m], main_mask).item()
            h_mc = sampled_logprob_estimate(roll.logprobs[:b_m], main_mask).item()
            # -- 5. update
            model.train()
            upd = roll.select(splice.rows)
            denoms = loss_denominators(upd.response_mask, splice.reinforce, cfg.optim.loss_agg_mode,
                                       cfg.algo.reinforce_norm, roll.response_mask[b_m:])
            dirty = True
            with amp():
                metrics = update(model, optimizer, loss_fn, step_cfg, upd, splice, denoms, cfg, device, step)
            controller.update(h_main)
            if controller.decision.saturated and not warned_saturation:
                warned_saturation = True
                log(controller.decision.saturation_warning(a.saturation_steps))
            t_end = time.time()
            n_tokens = int(roll.response_mask.sum())
            record = {
                "step": step,
                "actor/entropy": h_main,
                "actor/entropy_mc": h_mc,
                **metrics,
                "critic/score/mean": rewards[:b_m].mean().item(),
                "critic/advantages/mean": sequence_mean(splice.advantages[:, None].expand_as(upd.response_mask),
                                                         upd.response_mask).item(),
                "response_length/mean": main_mask.sum(-1).float().mean().item(),
                **decision.metrics(),
                **(pistar.metrics() if cfg.algo.target_distribution != "temperature" else {}),
                "controller/extra_score/mean": rewards[b_m:].mean().item() if len(extra_p) else 0.0,
                **splice.metrics(),
                "timing_s/gen": t_gen - t0,
                "timing_s/update": t_end - t_gen,
                "timing_s/reward": t_reward - t_gen,
                "timing_s/step": t_end - t0,
                "perf/gen_tokens_per_s": n_tokens / max(t_gen - t0, 1e-9),
            }
            if task.heldout and cfg.eval_every and (step % cfg.eval_every == 0 or step == cfg.steps):
                with amp():
                    record.update(validate(model, tok, task, cfg, device, eos))
            logger.log(record)
            done, dirty = step, False  # the step is whole: its update and its record
            if progress:  # (it may stop the run: a sweep's orphan check, a search's pruner)
                progress(step, cfg.steps, record)
            if cfg.save_every and step % cfg.save_every == 0:
                if not ckpt.finite_weights(model):
                    raise FloatingPointError(f"step {step}: the weights are not finite (lr {cfg.optim.lr}); "
                                             "the last good checkpoint is kept")
                save(step)
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        raise
    finally:
        # a dirty state is dropped (--resume reruns its step from the last checkpoint), and
        # non-finite weights never overwrite a good checkpoint
        if not dirty and (done > start or status == "finished") and ckpt.finite_weights(model):
            save(done)
        result = result_record(out, cfg, status, error, done, wall_before + time.time() - t_start)
        write_json_atomic(out / RESULT, result)
        logger.close(result)
    return result


def load_teacher(name: str, tok, dtype: str, device, log: Callable[[str], None]) -> torch.nn.Module:
    """The teacher pi* (target_distribution=teacher): a named start, a model or run directory, or a
    hub id (resolve_model_dir); its tokenizer must be the policy's (the rows are scored token by token)."""
    teacher, t_tok = load_model(resolve_model_dir(name, log=log), dtype, device)
    if t_tok.get_vocab() != tok.get_vocab():
        raise ConfigError(f"teacher {name} has another tokenizer than the policy: the teacher's samples must be "
                          "token ids the policy shares (choose a teacher of the same family)")
    return teacher.eval()


def update(model, optimizer, loss_fn, loss_cfg: LossConfig, upd: Rollout, splice: Splice,
           denoms: Denominators, cfg: RunConfig, device, step: int = 0) -> dict[str, float]:
    """PPO-clip update(s) on the spliced rows. With one minibatch this is strictly on-policy; with
    several, each holds its share of both loss terms (aepo.core.assembly.minibatches). Each
    minibatch's gradient is accumulated over micro-batches of `optim.micro_batch_rows` rows: its
    loss is a sum over rows with the whole batch's denominators, so the micro-batches' losses add
    up to it (methods whose loss is not are refused by the config). A non-finite loss or gradient
    stops the run (FloatingPointError) before the optimizer moves."""
    chunks = minibatches(splice.reinforce, cfg.optim.num_minibatches)
    share = denoms.per_minibatch(len(chunks))
    metrics: dict[str, float] = {}
    for idx in chunks:
        optimizer.zero_grad(set_to_none=True)
        micro = idx.split(cfg.optim.micro_batch_rows) if cfg.optim.micro_batch_rows else (idx,)
        seen: list[LossBatch] = []  # several micro-batches: each one detached, for the minibatch's metrics
        for rows in micro:
            batch = loss_batch(model, upd, splice, rows, share, device)
            loss, m = loss_fn(batch, loss_cfg)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"step {step}: the loss is {loss.item()} (lr {cfg.optim.lr}); "
                                         "the last good checkpoint is kept")
            loss.backward()
            if len(micro) > 1:
                seen.append(batch.detached())
        if seen:  # the metrics of the whole minibatch, from its detached pieces
            with torch.no_grad():
                _, m = loss_fn(LossBatch.cat(seen), loss_cfg)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        if not torch.isfinite(grad_norm):
            raise FloatingPointError(f"step {step}: the gradient norm is {float(grad_norm)} (lr {cfg.optim.lr}); "
                                     "the last good checkpoint is kept")
        optimizer.step()
        if not torch.isfinite(torch.nn.utils.get_total_norm(model.parameters())):  # one fused reduction
            raise FloatingPointError(f"step {step}: the weights blew up (their norm is not finite; lr "
                                     f"{cfg.optim.lr}); the last good checkpoint is kept")
        m["actor/grad_norm"] = float(grad_norm)
        for k, v in m.items():
            metrics[k] = metrics.get(k, 0.0) + v / len(chunks)
    metrics["actor/lr"] = cfg.optim.lr
    return metrics


def loss_batch(model, upd: Rollout, splice: Splice, rows: torch.Tensor, share: Denominators, device) -> LossBatch:
    """The loss inputs of some update rows: a forward pass of the policy (with grad) on them."""
    part = upd.select(rows).to(device)
    logp_all = torch.log_softmax(response_logits(model, part).float(), -1)  # (b, T, V)
    return LossBatch(
        log_prob=logp_all.gather(-1, part.response_ids[..., None]).squeeze(-1),
        old_log_prob=part.logprobs,
        advantages=splice.advantages[rows].to(device),
        mask=part.response_mask.float(),
        token_entropy=entropy_from_logprobs(logp_all),
        reinforce=splice.reinforce[rows].to(device),
        main_denom=share.main,
        reinforce_denom=share.reinforce,
    )


@torch.no_grad()
def validate(model, tok, task: Task, cfg: RunConfig, device, eos: list[int]) -> dict[str, float]:
    """Held-out accuracy: greedy, and n samples at T = 1 (mean@n, pass@n)."""
    model.eval()
    n_samples = cfg.eval_samples
    items = task.heldout[: cfg.eval_prompts]
    seqs = encode_prompts(tok, task, items, uses_chat(tok, cfg.data.chat_template), cfg.data.max_prompt_tokens)
    ids, mask = left_pad(seqs, tok.pad_token_id, device)
    gen = torch.Generator().manual_seed(cfg.seed + 99991)
    answers = [it["answer"] for it in items]
    greedy = sample(model, ids, mask, torch.ones(len(items)), cfg.rollout.max_new_tokens, eos,
                    tok.pad_token_id, greedy=True)
    acc = rewards_of(task, tok, greedy, answers, eos).mean().item()
    rep = torch.arange(len(items)).repeat_interleave(n_samples)
    sampled = sample(model, ids[rep], mask[rep], torch.ones(len(rep)), cfg.rollout.max_new_tokens,
                     eos, tok.pad_token_id, generator=gen if device.type == "cpu" else None)
    r = rewards_of(task, tok, sampled, [answers[i] for i in rep.tolist()], eos).view(len(items), n_samples)
    name = task.name
    return {f"val/{name}/accuracy": acc, f"val/{name}/mean@{n_samples}": r.mean().item(),
            f"val/{name}/pass@{n_samples}": (r.max(1).values).mean().item()}
