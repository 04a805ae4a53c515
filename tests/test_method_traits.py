"""One behaviour test per method: each fails if the trait that tells the method apart is lost
(issue 14: a generic every-method check passes for a method that quietly became GRPO).

Each runs the embedded trainer for a few steps on the tiny lab with spies on the sampling call
and on the update, so what is checked is what the trainer did, not what a table says.
"""

from __future__ import annotations

import pytest

from aepo.config import RunConfig
from aepo.embedded import trainer
from aepo.rundir import read_metrics


@pytest.fixture
def run(tmp_path, monkeypatch, tiny_model_dir):
    """run(method, **overrides) -> (metrics rows, per-step sampling temperatures, per-step updates)."""

    def go(method: str, steps: int = 5, **overrides):
        temps, updates = [], []
        real_sample, real_update = trainer.sample, trainer.update

        def sample(model, ids, mask, t, *a, **k):
            if not k.get("greedy") and len(t) == len(ids):
                temps.append(t.clone())
            return real_sample(model, ids, mask, t, *a, **k)

        def update(model, optimizer, loss_fn, loss_cfg, upd, splice, *rest):
            updates.append({"loss": loss_fn.__name__, "cfg": loss_cfg, "splice": splice})
            return real_update(model, optimizer, loss_fn, loss_cfg, upd, splice, *rest)

        monkeypatch.setattr(trainer, "sample", sample)
        monkeypatch.setattr(trainer, "update", update)
        cfg = RunConfig(out=str(tmp_path / method), steps=steps, wandb="off", eval_every=0, threads=1,
                        seed=1).with_overrides({"algo.method": method, "rollout.prompts_per_step": 8, **overrides})
        trainer.train(cfg, log=lambda *_: None)
        return read_metrics(tmp_path / method / "metrics.jsonl"), temps[:steps], updates

    return go


def test_grpo_samples_at_t1_and_updates_on_its_own_rows_with_the_plain_ppo_loss(run):
    rows, temps, updates = run("grpo")
    assert all((t == 1.0).all() for t in temps)
    assert all(u["loss"] == "grpo_loss" and not u["splice"].reinforce.any() for u in updates)
    assert all(r["controller/num_reinforce_samples"] == 0 for r in rows)


def test_entropy_reg_subtracts_lambda_times_the_entropy(run):
    rows, temps, updates = run("entropy_reg", **{"algo.entropy_coef": 0.03})
    assert all(u["loss"] == "entropy_reg_loss" and u["cfg"].entropy_coef == 0.03 for u in updates)
    assert all("actor/entropy_loss" in r for r in rows) and all((t == 1.0).all() for t in temps)


def test_entropy_adv_shapes_the_advantages_with_the_token_entropy(run):
    rows, _, updates = run("entropy_adv", steps=8)
    assert all(u["loss"] == "entropy_adv_loss" for u in updates)
    assert max(r["actor/entropy_adv_bonus"] for r in rows) > 0  # min(beta H_t, |A|/kappa) > 0 where A != 0


def test_entropy_adaptive_moves_its_coefficient_toward_the_target_and_applies_it(run):
    rows, temps, updates = run("entropy_adaptive", **{"algo.entropy_target": 3.0})  # far above: it rises
    coefs = [u["cfg"].entropy_coef for u in updates]
    assert coefs == pytest.approx([0.0, 0.005, 0.01, 0.015, 0.02])  # +delta per step below the target
    assert [r["controller/entropy_coef"] for r in rows] == pytest.approx(coefs)
    assert all((t == 1.0).all() for t in temps)


def test_aepo_samples_its_extra_groups_at_t_high_below_the_target_and_reinforces_their_right_answers(run):
    rows, temps, updates = run("aepo", steps=6, **{"algo.entropy_target": 3.0, "algo.controller": "bang_bang"})
    for t in temps:  # in_place: the last f * P = 4 groups of 8 at T_high
        assert (t[:32] == 1.0).all() and (t[32:] == 1.5).all()
    kept = [u for u in updates if u["splice"].reinforce.any()]
    assert kept, "no step kept a right temperature sample"
    for u in kept:
        s = u["splice"]
        assert (s.advantages[s.reinforce] == 1.0).all()  # REINFORCE: R = 1 for every kept (right) answer


def test_aepo_no_temp_samples_its_extra_groups_at_t1_with_no_feedback(run):
    rows, temps, _ = run("aepo_no_temp", **{"algo.entropy_target": 3.0})
    assert all((t == 1.0).all() for t in temps)
    assert {r["controller/strength"] for r in rows} == {1.0}


def test_aepo_with_negatives_keeps_wrong_temperature_samples_with_their_negative_advantage(run):
    _, _, updates = run("aepo_with_negatives", steps=6, **{"algo.entropy_target": 3.0})
    negatives = [u for u in updates if (u["splice"].advantages[u["splice"].reinforce] < 0).any()]
    assert negatives, "no wrong temperature sample entered the update"


def test_clip_higher_clip_cov_and_kl_cov_update_with_their_own_losses_at_t1(run):
    for method, loss in (("clip_higher", "clip_higher_loss"), ("clip_cov", "clip_cov_loss"), ("kl_cov", "kl_cov_loss")):
        rows, temps, updates = run(method, steps=2)
        assert all(u["loss"] == loss for u in updates) and all((t == 1.0).all() for t in temps)
    assert updates[0]["cfg"].cov_ratio == 2e-4 and updates[0]["cfg"].kl_cov_coef == 0.1


def test_entrocraft_trains_on_wrong_answers_only_while_entropy_is_below_its_band(run):
    rows, temps, updates = run("entrocraft", **{"algo.entropy_target": 3.0})  # far above: the band is never reached
    assert [r.get("controller/advantage_sign") for r in rows][1:] == [-1.0] * 4  # step 1: before any measurement
    for u in updates[1:]:
        assert (u["splice"].advantages <= 0).all() and (u["splice"].advantages < 0).any()  # NSR: R - 1


def test_entropic_feeds_its_pi_output_to_the_loss(run):
    rows, _, updates = run("entropic", **{"algo.entropy_target": 0.1})  # far below: u > 0, sharpen
    us = [u["cfg"].entropic_u for u in updates]
    assert us[0] == 0.0 and all(0 < u <= 1 for u in us[1:])
    assert [r["controller/entropic_u"] for r in rows[1:]] == pytest.approx(us[1:])
