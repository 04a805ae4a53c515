"""Sweeps across machines on a real PostgreSQL server (issue 18), each test what the README's
multi-machine section tells a user to do: workers with one `--storage postgresql://...` and one
`--out`. The server is started here (tests/pgserver.py), as the `postgres` user when run as root.

Every run is a few steps of the tiny lab, 2 prompts per step; workers are the real `aepo`
entry point in their own processes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("psycopg", reason="the postgres extra is not installed (pip install 'aepo[postgres]')")

from aepo.sweep.scheduler import open_study  # noqa: E402
from aepo.sweep.spec import load_sweep  # noqa: E402
from pgserver import PgServer, available  # noqa: E402
from test_sweep_runs import AEPO, status, steps_of, sweep_file, wait_for  # noqa: E402

if available():
    pytest.skip(available(), allow_module_level=True)


@pytest.fixture(scope="module")
def server():
    s = PgServer().init()
    yield s
    s.close()


def sweep_cmd(cfg: Path, out: Path, url: str, *extra: str) -> list[str]:
    return [*AEPO, "sweep", "entropy-targets", "--config", str(cfg), "--out", str(out), "--storage", url, *extra]


def trials_by_run(cfg: Path, out: Path, url: str) -> dict[str, list]:
    """run id -> its trials in the storage (FrozenTrial), in the order they were asked for."""
    study = open_study(load_sweep(cfg, out), url)
    by_run: dict[str, list] = {}
    for t in study.get_trials(deepcopy=False):
        by_run.setdefault(t.params.get("run_id"), []).append(t)
    return by_run


def trial_states(cfg: Path, out: Path, url: str) -> dict[str, list[str]]:
    return {r: [t.state.name for t in ts] for r, ts in trials_by_run(cfg, out, url).items()}


def starters(cfg: Path, out: Path, url: str) -> dict[str, list[int]]:
    """run id -> the pids of the workers that started it (the attempt record every start writes).
    Read from the storage, the record of truth, not parsed from the workers' stderr, where the
    progress thread prints beside the start lines (a CI run under load once missed a start there;
    if a run really is not started, the first assertion shows both workers' logs)."""
    pids = {r: [t.user_attrs["pid"] for t in ts if "pid" in t.user_attrs] for r, ts in trials_by_run(cfg, out, url).items()}
    return {r: p for r, p in pids.items() if p}


def test_two_workers_on_one_postgres_storage_and_one_out_run_every_point_once(tmp_path, server, tiny_model_dir):
    cfg, out, url = sweep_file(tmp_path, targets=(0.3, 0.5, 0.7)), tmp_path / "sw", server.database("split")
    a = subprocess.Popen(sweep_cmd(cfg, out, url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    b = subprocess.Popen(sweep_cmd(cfg, out, url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    logs = [p.communicate(timeout=300)[1] for p in (a, b)]
    assert a.returncode in (0, 1) and b.returncode in (0, 1), logs  # 1: the other still held a run at exit
    sweep = load_sweep(cfg, out)
    started = starters(cfg, out, url)
    assert sorted(started) == sorted(sweep.run_ids), logs  # every point started, by someone
    assert all(len(pids) == 1 for pids in started.values()), started  # and exactly once
    assert {pids[0] for pids in started.values()} == {a.pid, b.pid}, "both workers took runs"
    for r in sweep.runs:
        assert steps_of(Path(r.config.out)) == [1, 2, 3, 4]
    states = trial_states(cfg, out, url)
    assert all(s.count("COMPLETE") == 1 and "FAIL" not in s for s in states.values()), states
    df = pd.read_parquet(out / "results.parquet")
    assert df.status.eq("finished").all() and df.host.notna().all() and df.pid.notna().all()
    assert df.pid.nunique() == 2  # which process ran each run is in the table


def test_a_killed_worker_is_taken_over_from_its_checkpoint_and_the_storage_agrees(tmp_path, server, tiny_model_dir):
    cfg, out, url = sweep_file(tmp_path, steps=10, save_every=3), tmp_path / "sw", server.database("kill")
    runs = out / "runs"

    def midway() -> bool:
        return any(status(d) is None and (d / "metrics.jsonl").exists() and len(steps_of(d)) >= 4
                   for d in (runs.glob("*") if runs.exists() else []))

    proc = subprocess.Popen(sweep_cmd(cfg, out, url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(midway, 180, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = [d.name for d in runs.glob("*") if status(d) is None and (d / "metrics.jsonl").exists()]
    assert len(killed) == 1
    assert "RUNNING" in trial_states(cfg, out, url)[killed[0]]  # the dead worker's trial
    rerun = subprocess.run(sweep_cmd(cfg, out, url), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming {runs / killed[0]} from step" in rerun.stderr  # from its checkpoint, not from 0
    sweep = load_sweep(cfg, out)
    for r in sweep.runs:
        assert steps_of(Path(r.config.out)) == list(range(1, 11)), r.run_id  # no run lost or run twice
    states = trial_states(cfg, out, url)
    assert all(s.count("COMPLETE") == 1 and "RUNNING" not in s for s in states.values()), states
    assert states[killed[0]].count("FAIL") == 1  # the killed attempt, closed when its run was taken over


def test_a_worker_outlives_a_database_restart_and_never_marks_a_finished_run_failed(tmp_path, server, tiny_model_dir):
    cfg, out, url = sweep_file(tmp_path, steps=12, save_every=4, targets=(0.3,)), tmp_path / "sw", server.database("blip")
    runs = out / "runs"
    proc = subprocess.Popen(sweep_cmd(cfg, out, url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any((d / "metrics.jsonl").exists() for d in runs.glob("*")) if runs.exists() else False,
             180, proc)
    server.stop()  # the database goes away while a run trains ...
    time.sleep(4)
    server.start()  # ... and comes back
    _, err = proc.communicate(timeout=300)
    sweep = load_sweep(cfg, out)
    if proc.returncode != 0:  # a worker may give up with one line; a restart then completes the sweep
        assert len([ln for ln in err.splitlines() if ln.startswith("error:")]) == 1, err
        rerun = subprocess.run(sweep_cmd(cfg, out, url), capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
    for r in sweep.runs:
        result = json.loads((Path(r.config.out) / "result.json").read_text())
        assert result["status"] == "finished" and steps_of(Path(r.config.out)) == list(range(1, 13))
    states = trial_states(cfg, out, url)
    assert all(s.count("COMPLETE") == 1 and "RUNNING" not in s for s in states.values()), states


@pytest.mark.parametrize("url,match", [
    ("postgresql://aepo:wrong-password@127.0.0.1:{port}/postgres", "password authentication failed"),
    ("postgresql://aepo:x@127.0.0.1:1/db", "cannot open the optuna storage"),
    ("postgres:/nohost", "is not a database URL"),
])
def test_a_bad_url_or_password_is_one_line_before_any_run_starts(tmp_path, server, url, match):
    cfg, out = sweep_file(tmp_path), tmp_path / "sw"
    res = subprocess.run(sweep_cmd(cfg, out, url.format(port=server.port)), capture_output=True, text=True,
                         timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and match in lines[0], res.stderr
    assert "wrong-password" not in res.stderr and not (out / "runs").exists()
