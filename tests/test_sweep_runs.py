"""Sweeps that really train (tiny lab, a few steps): failures, claims, kills, concurrent workers.

Every run here is a few steps of the tiny lab with 2 prompts per step, so that the whole file
stays near a minute on 2 CPU cores. Process-level tests start the real `aepo` entry point.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from aepo.cli import app
from aepo.rundir import lock as claim
from aepo.sweep.scheduler import default_storage, open_study, work
from aepo.sweep.spec import load_sweep

runner = CliRunner()
AEPO = [sys.executable, "-c", "from aepo.cli import main; main()"]


def sweep_file(tmp_path: Path, steps: int = 4, targets=(0.3, 0.7), save_every: int = 2) -> Path:
    spec = {
        "name": "test",
        "base": {"steps": steps, "eval_every": 0, "save_every": save_every, "wandb": "off", "threads": 1,
                 "rollout": {"prompts_per_step": 2, "group_size": 4}},
        "axes": {"entropy_target": list(targets), "alpha": [0.1], "seed": [0]},
        "baselines": ["grpo"],
    }
    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


def steps_of(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def sweep_cli(cfg: Path, out: Path, *extra: str):
    return runner.invoke(app, ["sweep", "entropy-targets", "--config", str(cfg), "--out", str(out), *extra])


def trials_by_run(out: Path, cfg: Path) -> dict[str, list[str]]:
    sweep = load_sweep(cfg, out)
    study = open_study(sweep, default_storage(out))
    by_run: dict[str, list[str]] = {}
    for t in study.get_trials(deepcopy=False):
        by_run.setdefault(t.params.get("run_id"), []).append(t.state.name)
    return by_run


def test_claim_is_exclusive_and_released_when_its_holder_is_killed(tmp_path):
    run_dir = tmp_path / "runs" / "r"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from aepo.rundir import lock as claim\n"
        f"with claim(Path({str(run_dir)!r})) as ok:\n    print(ok, flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        with claim(run_dir) as mine:
            assert not mine  # a live holder keeps the run
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        with claim(run_dir) as mine:
            assert mine  # the kernel dropped the dead holder's lock: no stale claim
    finally:
        holder.kill()


def test_a_failing_run_is_recorded_and_does_not_stop_the_others(tmp_path, tiny_model_dir):
    cfg, out = sweep_file(tmp_path), tmp_path / "sw"
    broken = out / "runs" / "aepo__H0.3__a0.1__s0"
    (broken / "metrics.jsonl").mkdir(parents=True)  # the trainer cannot write its metrics: it fails
    res = sweep_cli(cfg, out)
    assert res.exit_code == 1, res.output
    df = pd.read_parquet(out / "results.parquet").set_index("run_id")
    assert df.loc["aepo__H0.3__a0.1__s0", "status"] == "failed"
    assert "Error" in df.loc["aepo__H0.3__a0.1__s0", "error"]
    assert (df.drop(index="aepo__H0.3__a0.1__s0").status == "finished").all()
    assert trials_by_run(out, cfg)["aepo__H0.3__a0.1__s0"] == ["FAIL"]
    # rerun without --retry-failed: nothing runs; with it, the failed run is retried and finishes
    again = sweep_cli(cfg, out)
    assert again.exit_code == 1 and "start" not in again.output
    (broken / "metrics.jsonl").rmdir()
    retried = sweep_cli(cfg, out, "--retry-failed")
    assert retried.exit_code == 0, retried.output
    assert steps_of(broken) == [1, 2, 3, 4]
    assert pd.read_parquet(out / "results.parquet").status.eq("finished").all()


def test_a_run_held_by_a_live_worker_is_never_started_by_another(tmp_path, tiny_model_dir):
    cfg, out = sweep_file(tmp_path, targets=(0.5,)), tmp_path / "sw"
    sweep = load_sweep(cfg, out)
    held = sweep.run("aepo__H0.5__a0.1__s0")
    with claim(Path(held.config.out)) as mine:  # this test is "another worker" running it
        assert mine
        report = work(sweep, default_storage(out), out, log=lambda m: None)
    assert report.ran == ["grpo__s0"]
    assert not (Path(held.config.out) / "metrics.jsonl").exists()


def wait_for(predicate, timeout: float, proc: subprocess.Popen) -> None:
    t0 = time.time()
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"the sweep exited before the condition held: {proc.stderr.read()}")
        if time.time() - t0 > timeout:
            proc.kill()
            pytest.fail("timed out waiting for the sweep")
        time.sleep(0.05)


def status(d: Path):
    """A run directory's result status, None while it has no (complete) result.json."""
    try:
        return json.loads((d / "result.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None


def test_killed_sweep_resumes_without_running_any_point_twice(tmp_path, tiny_model_dir):
    cfg, out = sweep_file(tmp_path, steps=10, save_every=3), tmp_path / "sw"
    runs = out / "runs"

    def one_done_one_checkpointed() -> bool:
        dirs = [d for d in runs.glob("*") if d.is_dir()] if runs.exists() else []
        done = [d for d in dirs if status(d) == "finished"]
        midway = [d for d in dirs if status(d) is None and (d / "metrics.jsonl").exists()
                  and len(steps_of(d)) >= 4]  # past the checkpoint at step 3
        return bool(done and midway)

    proc = subprocess.Popen([*AEPO, "sweep", "entropy-targets", "--config", str(cfg), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(one_done_one_checkpointed, 180, proc)
    proc.send_signal(signal.SIGKILL)  # no clean-up of any kind
    proc.wait()
    finished = {d.name: (d / "metrics.jsonl").read_bytes() for d in runs.glob("*") if status(d) == "finished"}
    killed = [d.name for d in runs.glob("*") if status(d) is None and (d / "metrics.jsonl").exists()]
    assert finished and len(killed) == 1

    rerun = subprocess.run([*AEPO, "sweep", "entropy-targets", "--config", str(cfg), "--out", str(out)],
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming {runs / killed[0]} from step" in rerun.stderr  # from its checkpoint, not from 0
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 3 and df.status.eq("finished").all()  # no run lost
    for d in runs.glob("*"):
        assert steps_of(d) == list(range(1, 11)), d.name  # every step once: no run twice
    for name, before in finished.items():
        assert (runs / name / "metrics.jsonl").read_bytes() == before  # finished runs untouched
        assert f"start {name}" not in rerun.stderr
    states = trials_by_run(out, cfg)
    assert all(s.count("COMPLETE") == 1 for s in states.values())
    assert states[killed[0]].count("FAIL") == 1  # the killed attempt, marked when its run was resumed


def test_two_concurrent_workers_on_one_sqlite_storage_never_run_the_same_point(tmp_path, tiny_model_dir):
    cfg, out = sweep_file(tmp_path, targets=(0.3, 0.5, 0.7)), tmp_path / "sw"
    cmd = [*AEPO, "sweep", "entropy-targets", "--config", str(cfg), "--out", str(out)]
    a = subprocess.Popen([*cmd, "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    b = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    logs = [p.communicate(timeout=300)[1] for p in (a, b)]
    assert a.returncode in (0, 1) and b.returncode in (0, 1), logs  # 1: the other still held a run at exit
    logs += [p.read_text() for p in (out / "logs").glob("worker-*.log")]
    starts = [line.split("start ", 1)[1].split()[0] for text in logs for line in text.splitlines()
              if "start " in line and "(trial" in line]
    sweep = load_sweep(cfg, out)
    assert sorted(starts) == sorted(sweep.run_ids)  # each point started exactly once, by someone
    for r in sweep.runs:
        assert steps_of(Path(r.config.out)) == [1, 2, 3, 4]
    states = trials_by_run(out, cfg)
    assert all(s.count("COMPLETE") == 1 and "FAIL" not in s for s in states.values()), states


def test_the_wandb_option_reaches_every_run_of_a_sweep_with_several_workers(tmp_path, tiny_model_dir):
    """Workers reload the sweep file; `--wandb off` must reach them (it was lost with --workers 2, so
    a file's W&B mode, default auto, started W&B in every run)."""
    spec = yaml.safe_load(sweep_file(tmp_path, steps=1).read_text())
    del spec["base"]["wandb"]  # the file leaves it at its default, auto
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec))
    out = tmp_path / "sw"
    proc = subprocess.run([*AEPO, "sweep", "entropy-targets", "--config", str(tmp_path / "sweep.yaml"), "--out",
                           str(out), "--workers", "2", "--wandb", "off"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 3
    for d in runs:
        assert json.loads((d / "config.json").read_text())["config"]["wandb"] == "off", d.name
        assert not (d / "wandb").exists(), d.name


def test_two_workers_handed_the_same_run_close_each_others_trial_in_either_order_without_crashing(tmp_path,
                                                                                                   monkeypatch):
    """The lock holder closes every other RUNNING trial of its run while the worker without the lock
    tells its own hand-out skipped: whichever comes second finds that trial finished. That raised
    UpdateFinishedTrialError in a worker (seen in CI under load), which left the run undone."""
    from optuna.trial import TrialState

    from aepo.sweep import scheduler

    (tmp_path / "sw").mkdir()
    sweep = load_sweep(sweep_file(tmp_path), tmp_path / "sw")
    study = open_study(sweep, default_storage(tmp_path / "sw"))
    run = sweep.runs[0]

    def two_hand_outs():
        for _ in range(2):
            study.enqueue_trial({"run_id": run.run_id})
        trials = [study.ask() for _ in range(2)]
        for t in trials:
            assert t.suggest_categorical("run_id", sweep.run_ids) == run.run_id
        return trials

    # the other worker tells its hand-out skipped before the lock holder, who saw it RUNNING, closes it
    holder, other = two_hand_outs()
    stale = [t for t in study.get_trials(deepcopy=True) if t.params.get("run_id") == run.run_id]
    scheduler._tell_skipped(study, other, run, "claimed by another worker", None)
    monkeypatch.setattr(scheduler, "_trials_of", lambda study, run_id: stale)
    scheduler._close_dead_trials(study, holder, run)
    monkeypatch.undo()
    state = lambda t: study.get_trials(deepcopy=False)[t.number].state
    assert (state(holder), state(other)) == (TrialState.RUNNING, TrialState.PRUNED)
    study.tell(holder, 1.0)
    # the lock holder closes the other hand-out before its worker tells it skipped
    holder, other = two_hand_outs()
    scheduler._close_dead_trials(study, holder, run)
    scheduler._tell_skipped(study, other, run, "claimed by another worker", None)
    assert (state(holder), state(other)) == (TrialState.RUNNING, TrialState.FAIL)
