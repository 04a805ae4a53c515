"""Gradient accumulation (optim.micro_batch_rows, issue 15): an update in micro-batches is the
update of the whole minibatch, gradient and metrics, for every method whose loss is a sum over rows."""

from __future__ import annotations

import functools

import pytest
import torch

from aepo.config import ConfigError, RunConfig
from aepo.core.assembly import assemble_aepo_batch, loss_denominators
from aepo.core.losses import LOSSES, LossConfig
from aepo.embedded.model import load_model
from aepo.embedded.sampler import sample
from aepo.embedded.trainer import left_pad, plain_splice, update
from aepo.methods import METHODS
from aepo.tasks.responses import stop_ids


def a_step(model, tok, method: str, agg: str):
    """One step's update rows from the tiny start: 3 prompts x 4 main samples, 2 x 4 at T = 1.5
    (AEPO's extra rows), fixed made-up rewards."""
    prompts = [tok(p).input_ids for p in ("37=", "52=", "81=")]
    ids, mask = left_pad([prompts[i] for i in [0] * 4 + [1] * 4 + [2] * 4 + [0] * 4 + [1] * 4], tok.pad_token_id, "cpu")
    temps = torch.tensor([1.0] * 12 + [1.5] * 8)
    roll = sample(model, ids, mask, temps, 8, stop_ids(tok, model.generation_config), tok.pad_token_id,
                  generator=torch.Generator().manual_seed(0))
    rewards = torch.tensor([1.0, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1])
    main_adv = (rewards[:12].view(3, 4) - rewards[:12].view(3, 4).mean(1, keepdim=True)).flatten()
    if METHODS[method].extra_samples:
        splice = assemble_aepo_batch(main_adv, rewards[12:], 4, "add", 0, True, METHODS[method].keep_negatives)
    else:
        splice = plain_splice(main_adv)
    upd = roll.select(splice.rows)
    denoms = loss_denominators(upd.response_mask, splice.reinforce, agg, "all_samples", roll.response_mask[12:])
    return upd, splice, denoms


@functools.cache
def tiny():
    from aepo.tasks.tinylab import tiny_model_path

    return load_model(str(tiny_model_path("tiny", log=lambda *_: None)), "float32", torch.device("cpu"))


def grads_and_metrics(method: str, agg: str, micro: int, minibatches: int):
    model, tok = tiny()  # its weights never move (lr 0); update() zeroes the gradients
    upd, splice, denoms = a_step(model, tok, method, agg)
    cfg = RunConfig()
    cfg.algo.method, cfg.optim.loss_agg_mode = method, agg
    cfg.optim.micro_batch_rows, cfg.optim.num_minibatches, cfg.optim.grad_clip = micro, minibatches, 1e9
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # the weights stay: the last minibatch's grads are compared
    loss_cfg = LossConfig(agg_mode=agg, alpha=2.0, entropy_coef=0.03)
    metrics = update(model.train(), opt, LOSSES[METHODS[method].loss], loss_cfg, upd, splice, denoms, cfg,
                     torch.device("cpu"))
    return [p.grad.clone() for p in model.parameters()], metrics


@pytest.mark.parametrize("agg", ["seq-mean-token-mean", "token-mean"])
@pytest.mark.parametrize("method", ["grpo", "aepo", "aepo_with_negatives", "entropy_reg", "entropy_adv", "clip_higher"])
def test_micro_batches_of_three_rows_give_the_whole_minibatchs_gradient_and_metrics(method, agg):
    for minibatches in (1, 2):
        want_g, want_m = grads_and_metrics(method, agg, 0, minibatches)
        got_g, got_m = grads_and_metrics(method, agg, 3, minibatches)
        assert all(torch.allclose(g, w, atol=1e-7, rtol=1e-5) for g, w in zip(got_g, want_g))
        assert want_m.keys() == got_m.keys()
        assert all(got_m[k] == pytest.approx(want_m[k], rel=1e-5, abs=1e-7) for k in want_m)


@pytest.mark.parametrize("method", [m for m, spec in METHODS.items() if not spec.row_additive])
def test_a_method_whose_loss_is_not_a_sum_over_rows_refuses_micro_batches(method):
    cfg = RunConfig()
    cfg.algo.method, cfg.optim.micro_batch_rows = method, 4
    with pytest.raises(ConfigError, match="computes its loss over the whole minibatch"):
        cfg.validate()


def test_a_run_with_bfloat16_autocast_trains_with_finite_metrics(tmp_path, tiny_model_dir):
    """model.autocast=bfloat16 (meant for a GPU) runs the same code on CPU: 2 steps, finite metrics."""
    import json
    import math

    from typer.testing import CliRunner

    from aepo.cli import app

    res = CliRunner().invoke(app, ["train", "--steps", "2", "--out", str(tmp_path / "run"), "--wandb", "off",
                                   "--set", "model.autocast=bfloat16", "--set", "rollout.prompts_per_step=4",
                                   "--set", "eval_every=2", "--set", "eval_prompts=4", "--set", "threads=1"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(math.isfinite(v) for r in rows for v in r.values() if isinstance(v, float))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["model"]["autocast"] == "bfloat16"
