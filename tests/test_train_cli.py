"""`aepo train` end to end: records, resume after a kill, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aepo.cli import app
from aepo.glossary import is_known
from aepo.methods import EMBEDDED, METHODS
from aepo.rundir import read_metrics

FAST = ["--wandb", "off", "--set", "rollout.prompts_per_step=4", "--set", "eval_every=0", "--set", "threads=1"]
TIMING = ("timing_s/", "perf/")


def run_cli(*args: str):
    return CliRunner().invoke(app, ["train", *args])


def comparable(rows):
    return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in rows]


@pytest.mark.parametrize("method", [m for m, spec in METHODS.items() if EMBEDDED in spec.backends])
def test_every_method_trains_and_writes_its_records(tmp_path, tiny_model_dir, method):
    out = tmp_path / method
    res = run_cli("--method", method, "--steps", "3", "--out", str(out), *FAST, "--set", "eval_every=3")
    assert res.exit_code == 0, res.output
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    for key in ("actor/entropy", "critic/score/mean", "controller/temperature",
                "controller/num_reinforce_samples", "val/tinylab/accuracy"):
        assert key in rows[-1]
    assert all(is_known(k) for r in rows for k in r), [k for r in rows for k in r if not is_known(k)]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["algo"]["method"] == method and cfg["versions"]["torch"]
    assert json.loads((out / "result.json").read_text())["status"] == "finished"
    assert (out / "checkpoint" / "model.safetensors").is_file()


def test_aepo_records_which_mode_ran(tmp_path, tiny_model_dir):
    out = tmp_path / "add"
    assert run_cli("--method", "aepo", "--mode", "add", "--alpha", "0.5", "--steps", "2", "--out", str(out),
                   *FAST).exit_code == 0
    assert json.loads((out / "config.json").read_text())["aepo_mode"] == "add"


def _cmd(out: Path, steps: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "aepo.cli", "train", "--method", "aepo", "--entropy-target", "0.7",
            "--steps", str(steps), "--out", str(out), *FAST, "--set", "save_every=5", *extra]


def test_a_killed_and_resumed_run_matches_an_uninterrupted_one(tmp_path, tiny_model_dir):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    steps = 30
    ref = tmp_path / "ref"
    subprocess.run(_cmd(ref, steps), check=True, env=env, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(killed, steps), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(read_metrics(killed / "metrics.jsonl")) < 12 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(read_metrics(killed / "metrics.jsonl"))
    assert 0 < done_before < steps, "the kill must land mid-run"
    subprocess.run(_cmd(killed, steps, "--resume"), check=True, env=env, capture_output=True)
    assert comparable(read_metrics(killed / "metrics.jsonl")) == comparable(read_metrics(ref / "metrics.jsonl"))


def test_resume_of_a_finished_run_changes_nothing(tmp_path, tiny_model_dir):
    out = tmp_path / "r"
    assert run_cli("--method", "grpo", "--steps", "2", "--out", str(out), *FAST).exit_code == 0
    before = (out / "metrics.jsonl").read_text()
    assert run_cli("--method", "grpo", "--steps", "2", "--out", str(out), *FAST, "--resume").exit_code == 0
    assert (out / "metrics.jsonl").read_text() == before


@pytest.mark.parametrize("args, message", [
    (["--method", "ppo"], "unknown method"),
    (["--entropy-target", "-0.1"], "entropy target"),
    (["--t-high", "1.0"], "T_high"),
    (["--t-low", "1.0"], "T_low"),
    (["--alpha", "-1"], "alpha"),
    (["--model", "/no/such/model"], "model path does not exist"),
    (["--set", "data.train_file=/no/such/file.jsonl", "--model", "tiny"], "data file not found"),
    (["--set", "algo.nope=1"], "unknown config key"),
])
def test_bad_input_gets_a_one_line_error_and_nonzero_exit(tmp_path, args, message):
    out = tmp_path / "bad"
    res = run_cli(*args, "--steps", "2", "--out", str(out), "--wandb", "off")
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], res.output
    assert not (out / "metrics.jsonl").exists()


def test_a_malformed_data_file_is_rejected(tmp_path, tiny_model_dir):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "1+1", "answer": "2"}\n{not json\n')
    res = run_cli("--model", str(tiny_model_dir), "--set", f"data.train_file={bad}", "--steps", "1",
                  "--out", str(tmp_path / "o"), "--wandb", "off")
    assert res.exit_code == 2 and "bad.jsonl:2: not valid JSON" in res.output


def test_an_existing_run_is_never_overwritten_without_resume(tmp_path, tiny_model_dir):
    out = tmp_path / "keep"
    assert run_cli("--method", "grpo", "--steps", "2", "--out", str(out), *FAST).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    res = run_cli("--method", "aepo", "--steps", "2", "--out", str(out), *FAST)
    assert res.exit_code == 2 and "already holds a run" in res.output
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_a_crashed_run_is_recorded_as_failed_and_keeps_its_metrics(tmp_path, tiny_model_dir, monkeypatch):
    from aepo.config import RunConfig
    from aepo.embedded import trainer

    calls = {"n": 0}
    real_update = trainer.update

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("boom")
        return real_update(*a, **k)

    monkeypatch.setattr(trainer, "update", flaky)
    cfg = RunConfig(out=str(tmp_path / "crash"), steps=5, wandb="off", eval_every=0).with_overrides(
        {"rollout.prompts_per_step": 4})
    with pytest.raises(RuntimeError):
        trainer.train(cfg, log=lambda *_: None)
    result = json.loads((tmp_path / "crash" / "result.json").read_text())
    assert result["status"] == "failed" and "boom" in result["error"] and result["steps_done"] == 2
    assert len(read_metrics(tmp_path / "crash" / "metrics.jsonl")) == 2
