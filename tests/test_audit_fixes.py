"""Issue 12, the outside audit: one test per finding, each named after it (12.n in the comments).

Every test here failed on the commit the audit read (2dfbe15). Findings tested elsewhere: 12.5 in
test_controller_and_assembly.py, 12.12 in test_sweep_results.py, and the verl halves of 12.2,
12.9, 12.10 and 12.11 in test_verl_backend.py.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from aepo.cli import app
from aepo.config import RunConfig
from aepo.core.assembly import assemble_aepo_batch
from aepo.core.losses import LossBatch, LossConfig, aepo_loss, ppo_clip_loss
from aepo.rundir import read_metrics

# (names added by the fixes are imported inside the tests, so that on the audited commit each test
# fails on its own finding rather than the whole file on an import)

FAST = ["--wandb", "off", "--set", "rollout.prompts_per_step=4", "--set", "eval_every=0", "--set", "threads=1"]


def train(*args: str):
    return CliRunner().invoke(app, ["train", *args])


def finite(rows: list[dict]) -> bool:
    return all(math.isfinite(v) for r in rows for v in r.values() if isinstance(v, float))


# ---- 12.1 ---------------------------------------------------------------------------------------
def test_a_config_file_and_set_each_decide_method_and_model(tmp_path, tiny_model_dir):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("algo: {method: grpo}\nmodel: {name_or_path: tiny-weak}\n")
    res = train("--config", str(cfg), "--steps", "1", "--out", str(tmp_path / "file"), *FAST)
    assert res.exit_code == 0, res.output
    rec = json.loads((tmp_path / "file" / "config.json").read_text())
    assert rec["config"]["algo"]["method"] == "grpo" and rec["model_dir"].endswith("tiny-weak")
    res = train("--set", "algo.method=entropy_reg", "--set", "model.name_or_path=tiny-weak", "--steps", "1",
                "--out", str(tmp_path / "set"), *FAST)
    assert res.exit_code == 0, res.output
    rec = json.loads((tmp_path / "set" / "config.json").read_text())
    assert rec["config"]["algo"]["method"] == "entropy_reg" and rec["model_dir"].endswith("tiny-weak")
    # an option given on the command line still wins over both
    res = train("--config", str(cfg), "--method", "aepo", "--steps", "1", "--out", str(tmp_path / "opt"), *FAST)
    assert json.loads((tmp_path / "opt" / "config.json").read_text())["config"]["algo"]["method"] == "aepo"


# ---- 12.2 ---------------------------------------------------------------------------------------
def eq2_batch(seed: int = 0):
    """An add-mode update batch: 12 main rows (GRPO advantages), 5 kept REINFORCE rows (R = 1) out of
    16 temperature samples, responses of 3 tokens, some one shorter."""
    g = torch.Generator().manual_seed(seed)
    main_adv = torch.randn(12, generator=g)
    extra_r = torch.tensor([1.0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1])  # last group all right: not kept
    splice = assemble_aepo_batch(main_adv, extra_r, 4, "add", 0, True)
    b_u = len(splice.rows)
    mask = torch.ones(b_u, 3)
    mask[::4, -1] = 0
    extra_mask = torch.ones(16, 3)
    logp = torch.randn(b_u, 3, generator=g).requires_grad_(True)
    return splice, mask, extra_mask, logp


def loss_of(splice, mask, logp, rows, denoms, alpha=2.0, agg="seq-mean-token-mean"):
    batch = LossBatch(logp[rows], logp[rows].detach(), splice.advantages[rows], mask[rows], torch.zeros(len(rows), 3),
                      splice.reinforce[rows], denoms.main, denoms.reinforce)
    return aepo_loss(batch, LossConfig(alpha=alpha, agg_mode=agg))


@pytest.mark.parametrize("agg", ["seq-mean-token-mean", "token-mean"])
@pytest.mark.parametrize("n", [1, 2, 4])
def test_add_mode_minibatches_each_carry_both_terms_and_average_to_the_full_batch_eq2_gradient(n, agg):
    from aepo.core.assembly import loss_denominators, minibatches

    splice, mask, extra_mask, logp = eq2_batch()
    full = loss_denominators(mask, splice.reinforce, agg, "all_samples", extra_mask)
    loss, _ = loss_of(splice, mask, logp, torch.arange(len(splice.rows)), full, agg=agg)
    want = torch.autograd.grad(loss, logp)[0]
    parts = minibatches(splice.reinforce, n)
    assert sorted(torch.cat(parts).tolist()) == list(range(len(splice.rows)))  # every row once
    for idx in parts:  # each minibatch holds its share of the main rows and of the kept rows
        assert (~splice.reinforce[idx]).sum() == 12 // n
        assert splice.reinforce[idx].sum() in (5 // n, -(-5 // n))
    got = torch.zeros_like(logp)
    for idx in parts:
        part_loss, metrics = loss_of(splice, mask, logp, idx, full.per_minibatch(n), agg=agg)
        assert all(math.isfinite(v) for v in metrics.values())
        got += torch.autograd.grad(part_loss, logp)[0] / n
    assert torch.allclose(got, want, atol=1e-6)


def test_add_mode_with_four_minibatches_trains_without_a_nan_metric(tmp_path, tiny_model_dir):
    # the audit: consecutive chunks put the kept rows last, so a chunk could hold no main row (pg_loss NaN,
    # a pure-REINFORCE optimizer step). Here 8 main rows + k kept rows in 4 chunks: any k >= 1 did it.
    out = tmp_path / "mb4"
    res = train("--method", "aepo", "--steps", "8", "--entropy-target", "2.0", "--out", str(out), *FAST,
                "--set", "optim.num_minibatches=4", "--set", "algo.extra_prompt_fraction=0.75")
    assert res.exit_code == 0, res.output
    rows = read_metrics(out / "metrics.jsonl")
    assert max(r["controller/num_reinforce_samples"] for r in rows) >= 1
    assert finite(rows)


# ---- 12.3 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["logging", "validation"])
def test_an_error_after_a_steps_update_resumes_without_applying_the_step_twice(tmp_path, tiny_model_dir,
                                                                               monkeypatch, where):
    from aepo.embedded import trainer
    from aepo.runlog import RunLogger

    def cfg(out):
        return RunConfig(out=str(tmp_path / out), steps=6, wandb="off", eval_every=1, eval_prompts=4,
                         eval_samples=2, save_every=2, threads=1).with_overrides({"rollout.prompts_per_step": 4})

    trainer.train(cfg("ref"), log=lambda *_: None)
    real_log, real_validate = RunLogger.log, trainer.validate

    def boom(step):
        if step == 3:
            raise RuntimeError(f"boom in {where}")

    if where == "logging":
        monkeypatch.setattr(RunLogger, "log", lambda self, rec: (boom(rec["step"]), real_log(self, rec)))
    else:
        calls = {"n": 0}

        def validate(*a, **k):
            calls["n"] += 1
            boom(calls["n"])
            return real_validate(*a, **k)

        monkeypatch.setattr(trainer, "validate", validate)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.train(cfg("cut"), log=lambda *_: None)
    monkeypatch.undo()
    state = json.loads((tmp_path / "cut" / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 2  # the last checkpoint whose weights are step 2's: step 3 is rerun
    trainer.train(cfg("cut"), resume=True, log=lambda *_: None)
    timing = ("timing_s/", "perf/")
    clean = [{k: v for k, v in r.items() if not k.startswith(timing)} for r in read_metrics(tmp_path / "ref" / "metrics.jsonl")]
    again = [{k: v for k, v in r.items() if not k.startswith(timing)} for r in read_metrics(tmp_path / "cut" / "metrics.jsonl")]
    assert again == clean
    weights = [(tmp_path / d / "checkpoint" / "model.safetensors").read_bytes() for d in ("ref", "cut")]
    assert weights[0] == weights[1]


# ---- 12.4 ---------------------------------------------------------------------------------------
def test_add_mode_weighs_each_right_temperature_sample_alpha_over_all_samples_as_eq2():
    from aepo.core.assembly import loss_denominators

    # 1 right answer among 64 temperature samples (8 groups of 8), alpha = 2, one main row with A = 0
    extra_r = torch.zeros(64)
    extra_r[0] = 1.0
    splice = assemble_aepo_batch(torch.zeros(8), extra_r, 8, "add", 0, True)
    assert splice.num_kept == 1
    mask = torch.ones(len(splice.rows), 1)
    logp = torch.zeros(len(splice.rows), 1, requires_grad=True)
    grads = {}
    for norm in ("all_samples", "kept"):
        d = loss_denominators(mask, splice.reinforce, "seq-mean-token-mean", norm, torch.ones(64, 1))
        loss, _ = loss_of(splice, mask, logp, torch.arange(len(splice.rows)), d)
        grads[norm] = torch.autograd.grad(loss, logp)[0][-1, 0].item()
    # d/dlogp of -alpha/D * logp: Eq. 2's estimator gives 2 / 64 = 0.031; the kept-mean 2.0
    assert grads["all_samples"] == pytest.approx(-2.0 / 64)
    assert grads["kept"] == pytest.approx(-2.0)


def test_the_reinforce_normalisation_is_a_named_option_recorded_in_config_json(tmp_path, tiny_model_dir):
    out = tmp_path / "kept"
    assert train("--steps", "1", "--out", str(out), *FAST, "--set", "algo.reinforce_norm=kept").exit_code == 0
    assert json.loads((out / "config.json").read_text())["config"]["algo"]["reinforce_norm"] == "kept"
    res = train("--steps", "1", "--out", str(tmp_path / "bad"), *FAST, "--set", "algo.reinforce_norm=mean")
    assert res.exit_code == 2 and "reinforce_norm" in res.stderr


# ---- 12.6 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kappa", ["1.0", "0.5"])
def test_entropy_adv_refuses_kappa_at_most_one(tmp_path, kappa):
    from aepo.core.advantages import entropy_shaped_advantages

    res = train("--method", "entropy_adv", "--set", f"algo.adv_kappa={kappa}", "--out", str(tmp_path / "k"), *FAST)
    assert res.exit_code == 2 and "kappa > 1" in res.stderr
    with pytest.raises(ValueError):  # A = -1, H = 5, beta 0.4, kappa 0.5 would give +1
        entropy_shaped_advantages(torch.tensor([[-1.0]]), torch.tensor([[5.0]]), 0.4, float(kappa))


# ---- 12.7 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["add", "replace"])
def test_aepo_no_temp_runs_at_the_fixed_budget_without_feedback(tmp_path, tiny_model_dir, mode):
    out = tmp_path / mode
    alpha = "2.0" if mode == "add" else "0.25"
    # target far below the start: a controller would lower (T_low, K halved) and pi_alpha scale its strength
    res = train("--method", "aepo_no_temp", "--mode", mode, "--alpha", alpha, "--entropy-target", "0.05",
                "--steps", "4", "--out", str(out), *FAST)
    assert res.exit_code == 0, res.output
    rows = read_metrics(out / "metrics.jsonl")
    assert {(r["controller/temperature"], r["controller/strength"], r["controller/raising"]) for r in rows} == {
        (1.0, 1.0, 1.0)}


# ---- 12.8 ---------------------------------------------------------------------------------------
def test_dual_clip_bounds_the_loss_of_a_negative_advantage_at_c_times_its_size():
    # A = -1, ratio e^log(5) = 5, eps 0.2: PPO-clip's loss is max(5, 1.2) = 5; dual clip c = 3 caps it at 3
    new = torch.log(torch.tensor([[5.0, 5.0]]))
    old = torch.zeros(1, 2)
    adv = torch.tensor([[-1.0, 1.0]])
    mask = torch.tensor([[1.0, 0.0]])
    plain, _ = ppo_clip_loss(new, old, adv, mask, 0.2, "token-mean")
    dual, _ = ppo_clip_loss(new, old, adv, mask, 0.2, "token-mean", dual_clip_c=3.0)
    assert plain.item() == pytest.approx(5.0) and dual.item() == pytest.approx(3.0)
    pos, _ = ppo_clip_loss(new, old, adv, torch.tensor([[0.0, 1.0]]), 0.2, "token-mean", dual_clip_c=3.0)
    assert pos.item() == pytest.approx(-1.2)  # positive advantages are untouched: -min(5, 1.2)


def test_the_reference_setting_is_complete_and_names_its_remaining_differences():
    import yaml

    repo = Path(__file__).resolve().parents[1]
    base = yaml.safe_load((repo / "sweeps" / "paper.yaml").read_text())["base"]
    cfg = RunConfig.from_dict(base).validate()
    assert (cfg.algo.mode, cfg.algo.controller, cfg.algo.extra_layout) == ("replace", "bang_bang", "additional")
    assert cfg.optim.loss_agg_mode == "token-mean" and cfg.optim.dual_clip_c == 3.0
    readme = (repo / "README.md").read_text()
    ref = readme[readme.index("reference setting"):]
    for phrase in ("dual_clip_c=3", "token-mean", "remaining differences"):
        assert phrase in ref


# ---- 12.9 ---------------------------------------------------------------------------------------
def test_a_crashed_embedded_run_exits_nonzero_with_one_line_and_no_traceback(tmp_path, tiny_model_dir, monkeypatch):
    from aepo.embedded import trainer

    def crash(*a, **k):
        raise RuntimeError("device fell over")

    monkeypatch.setattr(trainer, "update", crash)
    res = train("--steps", "2", "--out", str(tmp_path / "c"), *FAST)
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "device fell over" in lines[0] and "Traceback" not in res.output
    assert json.loads((tmp_path / "c" / "result.json").read_text())["status"] == "failed"


# ---- 12.10 --------------------------------------------------------------------------------------
def fake_verl_run(root: Path, tiny_model_dir: Path, with_weights: bool) -> Path:
    """A verl run directory as the launcher and verl leave it (toolkit record + verl's checkpoints)."""
    run = root / "verl_run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": RunConfig().to_dict(), "model_dir": str(tiny_model_dir),
                                                 "backend": "verl", "versions": {}}))
    (run / "checkpoints" / "latest_checkpointed_iteration.txt").write_text("4")
    hf = run / "checkpoints" / "global_step_4" / "actor" / "huggingface"
    shutil.copytree(tiny_model_dir, hf)
    if not with_weights:  # verl keeps config and tokenizer there, the weights only with save_contents hf_model
        (hf / "model.safetensors").unlink()
    return run


def test_aepo_eval_reads_a_verl_runs_checkpoint(tmp_path, tiny_model_dir):
    run = fake_verl_run(tmp_path, tiny_model_dir, with_weights=True)
    res = CliRunner().invoke(app, ["eval", "--model", str(run), "--benchmarks", "tinylab", "--out", str(tmp_path / "e")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "e" / "summary.json").read_text())["benchmarks"]["tinylab"]["n"] == 18


def test_aepo_eval_refuses_verl_shards_with_one_line_naming_the_merger_command(tmp_path, tiny_model_dir):
    run = fake_verl_run(tmp_path, tiny_model_dir, with_weights=False)
    res = CliRunner().invoke(app, ["eval", "--model", str(run), "--benchmarks", "tinylab", "--out", str(tmp_path / "e")])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "python -m verl.model_merger merge --backend fsdp" in res.stderr


# ---- 12.11 --------------------------------------------------------------------------------------
def test_the_embedded_trainer_samples_every_extra_prompt_whatever_the_strength(tmp_path, tiny_model_dir, monkeypatch):
    from aepo.embedded import trainer

    extra_rows = []
    real = trainer.sample

    def spy(model, ids, mask, temps, *a, **k):
        extra_rows.append(int((temps != 1.0).sum()))
        return real(model, ids, mask, temps, *a, **k)

    monkeypatch.setattr(trainer, "sample", spy)
    out = tmp_path / "pi"
    # pi_alpha near its target: strength well below 1 on most steps
    res = train("--steps", "6", "--entropy-target", "1.15", "--out", str(out), *FAST)
    assert res.exit_code == 0, res.output
    strengths = [r["controller/strength"] for r in read_metrics(out / "metrics.jsonl")]
    assert min(strengths) < 1.0
    assert extra_rows == [2 * 8] * 6  # f * P = 2 prompts x G = 8, every step


# ---- 12.13 --------------------------------------------------------------------------------------
def test_runs_that_differ_in_alpha_are_two_conditions_not_two_seeds(tmp_path):
    from analysis.claims import THRESHOLDS
    from analysis.load import frames
    from analysis.summary import run_table
    from analysis.synthetic import synthetic_run
    from analysis import tables as T

    runs = []
    for alpha in (1.0, 2.0):  # sweeps/smoke.yaml's shape: one seed, two alphas
        r = synthetic_run("aepo", 0, 0.5, steps=20)
        r.run_id, r.config["algo"]["alpha"] = f"aepo__H0.5__a{alpha}__s0", alpha
        runs.append(r)
    f = frames(runs)
    assert list(f.runs["condition"]) == ["aepo H=0.50 a=1.0", "aepo H=0.50 a=2.0"]
    ct = T.control_table(run_table(f, THRESHOLDS))
    assert list(ct["seeds"]) == [1, 1]
    assert all("[" not in c for c in ct["mean |H−H*|, 2nd half"])  # one seed: a value, no interval


# ---- 12.14 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tiny", "tiny-weak", "tiny-b2", "tiny-b3", "tiny-weak-b2", "tiny-weak-b3", "tiny-wide"])
def test_the_shipped_tiny_lab_starts_match_their_checksums_and_need_no_cache(tmp_path, monkeypatch, name):
    from aepo.tasks import tinylab

    monkeypatch.setenv("AEPO_CACHE", str(tmp_path / "empty"))
    d = tinylab.tiny_model_path(name, log=lambda *_: None)
    manifest = json.loads((d / tinylab.MANIFEST).read_text())
    assert tinylab.file_digests(d) == manifest and "model.safetensors" in manifest
    assert not (tmp_path / "empty").exists()  # nothing is built or cached


def test_the_tiny_lab_recipe_is_a_command_that_rebuilds_a_start(tmp_path, monkeypatch):
    from aepo.tasks import tinylab

    monkeypatch.setitem(tinylab.SPECS, "tiny", tinylab.TinyLabSpec(pretrain_steps=2, pretrain_batch=8))
    code = tinylab.main(["build", "tiny", "--out", str(tmp_path / "b")])
    assert code == 1  # two steps are not the shipped 400: the command says DIFFERENT and exits 1
    assert tinylab.file_digests(tmp_path / "b") == json.loads((tmp_path / "b" / tinylab.MANIFEST).read_text())


# ---- 12.15 --------------------------------------------------------------------------------------
def test_the_entropy_of_a_distribution_with_a_minus_inf_log_prob_is_finite():
    from aepo.core.entropy import entropy_from_logits

    h = entropy_from_logits(torch.tensor([0.0, float("-inf"), 0.0]))
    assert h.item() == pytest.approx(math.log(2))
