"""The adaptive search (issue 16): optuna's samplers over a sweep file's target range. A synthetic
objective with a known optimum (no training) for the sampler and the pruner; the real CLI on the
tiny lab for resume after kill -9 and for bad input."""

from __future__ import annotations

import json
import math
import signal
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from aepo.cli import app
from aepo.rundir import write_json_atomic
from aepo.sweep.search import run_search
from aepo.sweep.spec import load_sweep
from conftest import one_line_error, snapshot
from test_sweep_runs import AEPO, status, steps_of, wait_for

OPTIMUM = 0.6


def search_file(tmp_path: Path, steps: int = 40, save_every: int = 0, pruner: str = "median",
                seeds=(0, 1, 2), low=0.1, high=1.2, step=0.05) -> Path:
    spec = {"name": "srch", "method": "aepo",
            "base": {"steps": steps, "eval_every": 10, "save_every": save_every, "wandb": "off", "threads": 1,
                     "rollout": {"prompts_per_step": 2, "group_size": 4}},
            "axes": {"entropy_target": [0.3, 0.6, 0.9], "seed": list(seeds)},
            "search": {"entropy_target": [low, high], "step": step, "objective": "pass@1", "pruner": pruner}}
    p = tmp_path / "search.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


def synthetic_execute(calls: list[str], noise: float = 0.01):
    """A stand-in for training: a run's held-out pass@1 climbs over its steps to
    1 - (H* - OPTIMUM)^2 (+ seed noise); it reports every 10 steps as the trainer's validation does."""

    def execute(run, resume, progress, log):
        calls.append(run.run_id)
        cfg = run.config
        Path(cfg.out).mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(cfg.seed)
        final = 1.0 - (cfg.algo.entropy_target - OPTIMUM) ** 2 + noise * rng.standard_normal()
        for step in range(10, cfg.steps + 1, 10):
            record = {"step": step, "val/lab/mean@16": final * step / cfg.steps}
            with open(Path(cfg.out) / "metrics.jsonl", "a") as f:  # as the trainer writes it, before it reports
                f.write(json.dumps(record) + "\n")
            if progress:
                progress(step, cfg.steps, record)
        result = {"status": "finished", "steps_done": cfg.steps, "steps": cfg.steps, "final/val/lab/mean@16": final}
        write_json_atomic(Path(cfg.out) / "result.json", result)
        return result

    return execute


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_a_search_finds_a_known_optimum_within_two_steps_of_the_target_grid(tmp_path, sampler):
    sweep = load_sweep(search_file(tmp_path, pruner="none"), tmp_path / "out")
    calls: list[str] = []
    used = run_search(sweep, sampler, 14, 0, tmp_path / "out", log=lambda m: None, execute_fn=synthetic_execute(calls))
    values = {r.run_id: json.loads((Path(r.config.out) / "result.json").read_text())["final/val/lab/mean@16"]
              for r in used}
    best = max(used, key=lambda r: values[r.run_id])
    assert abs(best.config.algo.entropy_target - OPTIMUM) <= 0.1  # stated tolerance: two steps of 0.05
    pick = json.loads((tmp_path / "out" / f"search_{sampler}_s0.json").read_text())  # the search's own pick
    assert abs(pick["best_target"] - OPTIMUM) <= 0.1 and pick["ci_low"] <= pick["best_target"] <= pick["ci_high"]
    assert len(calls) == len(set(calls)) <= 14  # one run per trial at most, none run twice
    assert all(r.run_id.startswith("aepo__H") and r.run_id.split("__s")[1] in "012" for r in used)


def test_the_pruner_stops_hopeless_runs_and_the_records_say_where(tmp_path):
    sweep = load_sweep(search_file(tmp_path, pruner="median"), tmp_path / "out")
    calls: list[str] = []
    run_search(sweep, "tpe", 12, 1, tmp_path / "out", log=lambda m: None, execute_fn=synthetic_execute(calls))
    df = pd.read_parquet(tmp_path / "out" / "results.parquet")
    pruned = df[df.status == "pruned"]
    assert len(pruned) >= 1 and (df.status.isin(["finished", "pruned"])).all()
    for d in pruned.run_dir:
        r = json.loads((Path(d) / "result.json").read_text())
        assert r["pruned_at_step"] in (10, 20, 30)  # stopped at a validation step before the end (40)
    from optuna.trial import TrialState

    from aepo.sweep.search import open_search_study
    study = open_search_study(sweep, "tpe", 1, f"sqlite:///{tmp_path / 'out' / 'optuna.db'}")
    states = [t.state for t in study.get_trials()]
    assert states.count(TrialState.PRUNED) == len(pruned)
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 12


def test_a_search_reuses_the_runs_a_grid_finished_in_the_same_directory(tmp_path):
    sweep = load_sweep(search_file(tmp_path, pruner="none", seeds=(0,), low=0.3, high=0.9, step=0.3), tmp_path / "out")
    done = [sweep.search_run(t, 0) for t in (0.3, 0.6, 0.9)]  # the grid's runs, finished earlier
    for r in done:
        Path(r.config.out).mkdir(parents=True)
        write_json_atomic(Path(r.config.out) / "result.json",
                          {"status": "finished", "steps_done": 40, "steps": 40, "final/val/lab/mean@16": 0.5})
    calls: list[str] = []
    run_search(sweep, "tpe", 3, 0, tmp_path / "out", log=lambda m: None, execute_fn=synthetic_execute(calls))
    assert calls == []  # every target of the range was a finished grid run: nothing trained


def test_a_killed_search_resumes_its_run_from_the_checkpoint(tmp_path, tiny_model_dir):
    cfg = search_file(tmp_path, steps=60, save_every=5, pruner="none", seeds=(0,), low=0.3, high=0.5, step=0.1)
    out = tmp_path / "out"
    cmd = [*AEPO, "sweep", "entropy-targets", "--config", str(cfg), "--out", str(out), "--search", "tpe",
           "--trials", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = out / "runs"

    def checkpointed() -> bool:
        return any((d / "checkpoint" / "trainer_state.json").exists() and status(d) is None for d in runs.glob("*"))

    wait_for(checkpointed, 180, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = [d.name for d in runs.glob("*") if status(d) is None]
    assert len(killed) == 1
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming {runs / killed[0]} from step" in rerun.stderr  # the same target and seed, from its checkpoint
    finished = [d for d in runs.glob("*") if status(d) == "finished"]
    assert killed[0] in [d.name for d in finished]  # (a target asked again with its one seed done costs no run)
    for d in finished:
        assert steps_of(d) == list(range(1, 61)), d.name  # every step once
    assert "search: best target H* = " in rerun.stderr
    df = pd.read_parquet(out / "results.parquet")
    assert sorted(df.run_id) == sorted(d.name for d in finished)
    from optuna.trial import TrialState

    from aepo.sweep.search import open_search_study
    states = [t.state for t in open_search_study(load_sweep(cfg, out), "tpe", 0,
                                                 f"sqlite:///{out / 'optuna.db'}").get_trials()]
    assert states.count(TrialState.COMPLETE) == 2 and states.count(TrialState.FAIL) == 1  # the killed attempt


@pytest.mark.parametrize("args, block, match", [
    (["--search", "tpe"], True, "--search tpe needs --trials N"),
    (["--search", "tpe", "--trials", "0"], True, "--search tpe needs --trials N"),
    (["--trials", "3"], True, "--trials is for --search tpe|gp"),
    (["--search", "annealing", "--trials", "3"], True, "--search must be one of grid, tpe, gp"),
    (["--search", "tpe", "--trials", "3"], False, "needs a `search:` block"),
    (["--search", "gp", "--trials", "3", "--workers", "2"], True, "--search runs one trial at a time"),
])
def test_bad_search_options_are_one_line(tmp_path, args, block, match):
    p = search_file(tmp_path)
    if not block:
        spec = yaml.safe_load(p.read_text())
        del spec["search"]
        p.write_text(yaml.safe_dump(spec))
    before = snapshot(tmp_path)
    res = CliRunner().invoke(app, ["sweep", "entropy-targets", "--config", str(p), "--out", str(tmp_path / "o"), *args])
    one_line_error(res, before, match)


@pytest.mark.parametrize("search, match", [
    ({"entropy_target": [0.9, 0.3]}, "0 <= LOW < HIGH"),
    ({"entropy_target": [0.3, ".inf"]}, "search.entropy_target"),
    ({"entropy_target": 0.5}, "search.entropy_target must be [LOW, HIGH]"),
    ({"entropy_target": [0.1, 0.9], "step": 0.0}, "0 < step"),
    ({"entropy_target": [0.1, 0.9], "objective": "loss"}, "unknown search objective 'loss'"),
    ({"entropy_target": [0.1, 0.9], "pruner": "asha"}, "unknown search pruner 'asha'"),
    ({"entropy_target": [0.1, 0.9], "sampler": "tpe"}, "search has an unknown key 'sampler'"),
])
def test_a_bad_search_block_is_one_line(tmp_path, search, match):
    p = search_file(tmp_path)
    spec = yaml.safe_load(p.read_text())
    spec["search"] = search
    p.write_text(yaml.safe_dump(spec))
    before = snapshot(tmp_path)
    res = CliRunner().invoke(app, ["sweep", "entropy-targets", "--config", str(p), "--out", str(tmp_path / "o"),
                                   "--search", "tpe", "--trials", "3"])
    one_line_error(res, before, match)


def test_a_hyperband_search_completes_and_never_prunes_in_a_runs_first_quarter(tmp_path):
    sweep = load_sweep(search_file(tmp_path, pruner="hyperband"), tmp_path / "out")
    run_search(sweep, "tpe", 10, 2, tmp_path / "out", log=lambda m: None, execute_fn=synthetic_execute([]))
    df = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert len(df) >= 1 and df.status.isin(["finished", "pruned"]).all()
    for d in df[df.status == "pruned"].run_dir:
        assert json.loads((Path(d) / "result.json").read_text())["pruned_at_step"] >= 10  # 40 steps // 4


def test_the_search_summary_names_a_best_target_when_every_target_scores_the_same(tmp_path):
    from aepo.sweep.search import best_summary, best_target

    sweep = load_sweep(search_file(tmp_path, seeds=(0,)), tmp_path / "out")
    runs = [sweep.search_run(t, 0) for t in (0.3, 0.6)]
    for r in runs:
        Path(r.config.out).mkdir(parents=True)
        write_json_atomic(Path(r.config.out) / "result.json", {"status": "finished", "final/val/lab/mean@16": 0.0})
    line = best_summary(best_target(sweep, runs))
    assert line.startswith("search: best target H* = 0.3 (held-out scores at fewer than 3 targets: no curve)")
    assert "2 finished runs at 2 targets" in line


def test_the_search_pick_counts_the_scores_of_pruned_runs(tmp_path):
    """A pruned run's held-out scores up to where it stopped are evidence about its target. Finished
    runs at 0.3-0.5 rise by 2 points a target, so alone they put the best at 0.5; a run at 0.6 pruned at
    step 20, 0.3 below them at steps 10 and 20, shows the curve turns down after 0.4."""
    from aepo.sweep.search import best_target

    sweep = load_sweep(search_file(tmp_path, seeds=(0,), low=0.3, high=0.7, step=0.05), tmp_path / "out")
    runs = []
    for target, status, scores in [(0.3, "finished", [0.30, 0.50, 0.60, 0.70]), (0.4, "finished", [0.32, 0.52, 0.62, 0.72]),
                                   (0.5, "finished", [0.34, 0.54, 0.64, 0.74]), (0.6, "pruned", [0.1, 0.2])]:
        run = sweep.search_run(target, 0)
        Path(run.config.out).mkdir(parents=True)
        with open(Path(run.config.out) / "metrics.jsonl", "w") as f:
            for i, v in enumerate(scores):
                f.write(json.dumps({"step": 10 * (i + 1), "val/lab/mean@16": v}) + "\n")
        write_json_atomic(Path(run.config.out) / "result.json",
                          {"status": status, "final/val/lab/mean@16": scores[-1]} if status == "finished" else
                          {"status": status, "pruned_at_step": 10 * len(scores)})
        runs.append(run)
    assert best_target(sweep, runs[:3])["best_target"] == pytest.approx(0.5)
    best = best_target(sweep, runs)
    assert best["best_target"] == pytest.approx(0.4) and best["best_measured_target"] == pytest.approx(0.5)
    assert (best["finished_runs"], best["runs"], best["scores"]) == (3, 4, 14)


def test_a_run_is_never_pruned_at_its_last_step():
    """A finished run's final score is the trial's value: pruning it there would throw a whole run
    away (a search on the wide lab once pruned a run at step 400 of 400)."""
    from aepo.sweep.search import PruneRun, pruning_progress

    class Trial:
        reported: list = []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return True  # the pruner would stop anything

    trial = Trial()
    progress = pruning_progress(trial, "pass@1")
    with pytest.raises(PruneRun):
        progress(200, 400, {"step": 200, "val/tinylab/mean@8": 0.5})
    progress(400, 400, {"step": 400, "val/tinylab/mean@8": 0.7})  # no PruneRun
    assert trial.reported == [(200, 0.5), (400, 0.7)]


def test_the_seed_median_pruner_compares_a_run_only_with_finished_runs_of_its_own_seed():
    import optuna
    from optuna.trial import TrialState, create_trial

    from aepo.sweep.search import seed_median_pruner

    study = optuna.create_study(direction="maximize")
    # step-100 scores of finished runs: seed 0 median 0.65, seed 1 median 0.3, all together 0.45
    for seed, v in [(0, 0.5), (0, 0.6), (0, 0.7), (0, 0.8), (1, 0.2), (1, 0.3), (1, 0.3), (1, 0.4)]:
        study.add_trial(create_trial(value=v, intermediate_values={100: v}, user_attrs={"seed": seed}))
    pruner = seed_median_pruner(n_startup_trials=4, n_warmup_steps=100)

    def running(seed, scores):
        return create_trial(state=TrialState.RUNNING, intermediate_values=scores, user_attrs={"seed": seed})

    assert not pruner.prune(study, running(1, {100: 0.42}))  # above its seed's 0.3 (all seeds' 0.45 would stop it)
    assert optuna.pruners.MedianPruner(4, 100).prune(study, running(1, {100: 0.42}))
    assert pruner.prune(study, running(0, {100: 0.6}))  # below its seed's 0.65
    assert not pruner.prune(study, running(0, {50: 0.7, 100: 0.6}))  # its best so far, 0.7, is above
    assert not pruner.prune(study, running(2, {100: 0.0}))  # no finished run of seed 2 yet
    assert not pruner.prune(study, running(0, {50: 0.0}))  # before the warm-up ends
    assert not pruner.prune(study, running(0, {200: 0.0}))  # no run of its seed reported at step 200


def test_a_seed_median_search_prunes_and_records_where(tmp_path):
    sweep = load_sweep(search_file(tmp_path, pruner="seed_median", seeds=(0,)), tmp_path / "out")
    run_search(sweep, "tpe", 12, 1, tmp_path / "out", log=lambda m: None, execute_fn=synthetic_execute([]))
    df = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert df.status.isin(["finished", "pruned"]).all() and (df.status == "pruned").sum() >= 1
    for d in df[df.status == "pruned"].run_dir:
        assert json.loads((Path(d) / "result.json").read_text())["pruned_at_step"] in (10, 20, 30)
