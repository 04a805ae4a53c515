"""A kill at every point of a checkpoint save, then --resume: the run continues from the newest
complete checkpoint and ends with the metrics and weights of an uninterrupted run (issue 13.4:
a kill between the two renames used to leave no checkpoint/, and --resume restarted from 0)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from aepo.config import RunConfig
from aepo.embedded import checkpoint, trainer
from aepo.rundir import read_metrics

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--method", "aepo", "--steps", "4", "--wandb", "off", "--set", "rollout.prompts_per_step=4",
        "--set", "eval_every=0", "--set", "threads=1", "--set", "save_every=2"]
# the child kills itself (SIGKILL: no finally, no cleanup) at the N-th file operation of its saves
CHILD = ("import os, signal, sys\n"
         "from aepo.embedded import checkpoint\n"
         "target, seen = int(sys.argv[1]), [0]\n"
         "def hook(name):\n"
         "    seen[0] += 1\n"
         "    if seen[0] == target:\n"
         "        os.kill(os.getpid(), signal.SIGKILL)\n"
         "checkpoint._between_operations = hook\n"
         "from aepo.cli import main\n"
         "sys.argv = ['aepo', 'train', '--out', sys.argv[2], *sys.argv[3:]]\n"
         "main()\n")


def config(out: Path) -> RunConfig:
    return RunConfig(out=str(out), steps=4, wandb="off", eval_every=0, save_every=2, threads=1).with_overrides(
        {"algo.method": "aepo", "rollout.prompts_per_step": 4})


def comparable(rows):
    return [{k: v for k, v in r.items() if not k.startswith(("timing_s/", "perf/"))} for r in rows]


def test_a_kill_between_any_two_file_operations_of_a_save_resumes_from_the_newest_complete_checkpoint(
        tmp_path, tiny_model_dir, monkeypatch):
    ops: list[str] = []
    monkeypatch.setattr(checkpoint, "_between_operations", ops.append)
    trainer.train(config(tmp_path / "ref"), log=lambda *_: None)
    monkeypatch.undo()
    first_save = ops.index("old removed") + 1  # the step-2 save (no earlier checkpoint to move away)
    second_save = ops[first_save:].index("old removed") + 1  # the step-4 save: every operation of a swap
    assert ops[first_save:first_save + second_save] == ["model", "tokenizer", "optimizer", "state", "final -> old",
                                                        "tmp -> final", "old removed"]
    points = range(first_save + 1, first_save + second_save + 1)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    children = {n: subprocess.Popen([sys.executable, "-c", CHILD, str(n), str(tmp_path / f"k{n}"), *ARGS], cwd=REPO,
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n in points}
    for n, child in children.items():
        assert child.wait(timeout=600) == -9, f"the kill at operation {n} did not happen"
    ref_rows = comparable(read_metrics(tmp_path / "ref" / "metrics.jsonl"))
    ref_weights = (tmp_path / "ref" / "checkpoint" / "model.safetensors").read_bytes()
    for n, name in zip(points, ops[first_save:]):
        run = tmp_path / f"k{n}"
        assert not (run / "result.json").exists()  # killed: no record of the end
        said: list[str] = []
        trainer.train(config(run), resume=True, log=said.append)
        # the newest complete checkpoint: step 4's once its state file is written, step 2's before
        newest = 4 if ops[first_save:].index(name) >= ops[first_save:].index("state") else 2
        assert any(f"from step {newest}" in line for line in said), (name, said)
        assert comparable(read_metrics(run / "metrics.jsonl")) == ref_rows, f"killed after '{name}'"
        assert (run / "checkpoint" / "model.safetensors").read_bytes() == ref_weights, f"killed after '{name}'"
        assert not (run / ".checkpoint.tmp").exists() and not (run / ".checkpoint.old").exists()


def test_a_terminated_aepo_train_keeps_a_checkpoint_writes_its_record_and_says_how_to_resume(tmp_path, tiny_model_dir):
    import signal
    import time

    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [a if a != "4" else "400" for a in ARGS]  # long enough to be running when the signal comes
    child = subprocess.Popen([sys.executable, "-m", "aepo.cli", "train", "--out", str(out), *args], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while len(read_metrics(out / "metrics.jsonl")) < 3 and time.time() < deadline and child.poll() is None:
        time.sleep(0.2)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=300)
    assert child.returncode == 130
    assert err.strip().splitlines()[-1].startswith("error: interrupted: run the same command with --resume")
    assert "Traceback" not in err
    done = len(read_metrics(out / "metrics.jsonl"))
    assert 3 <= done < 400
    state = json.loads((out / "checkpoint" / checkpoint.TRAINER_STATE).read_text())
    # the newest whole step is checkpointed when the signal comes between steps; one that comes
    # inside a step's update drops that step's state, and the checkpoint is the last periodic one
    # (save_every=2 here): --resume truncates the lines after it and reruns those steps
    assert state["step"] in (done, done - 1)
    assert (out / "result.json").is_file() and '"interrupted"' in (out / "result.json").read_text()
