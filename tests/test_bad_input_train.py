"""`aepo train` against bad input (issue 13): every case is one line on stderr, exit 2, no
traceback, and every file that existed before keeps its bytes. Cases that need a run use a copy
of one 2-step run made once per module."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aepo.cli import app
from conftest import one_line_error, snapshot

FAST = ["--set", "rollout.prompts_per_step=4", "--set", "eval_every=0", "--set", "threads=1", "--wandb", "off"]
BOMB = "".join(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}" if i else '"x"'] * 9) + "]\n" for i in range(9))


@pytest.fixture(scope="module")
def a_run(tmp_path_factory, tiny_model_dir) -> Path:
    out = tmp_path_factory.mktemp("made") / "run"
    res = CliRunner().invoke(app, ["train", "--method", "grpo", "--steps", "2", "--out", str(out), *FAST,
                                   "--set", "save_every=1"])
    assert res.exit_code == 0, res.output
    return out


def _file(tmp: Path, name: str, data: bytes | str) -> Path:
    p = tmp / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return p


# (id, files to write {name: content}, CLI arguments with {tmp} for the test folder, expected text)
CASES = [
    ("config-not-utf8", {"c.yaml": b"steps: 2\nseed: \xff\xfe\n"}, ["--config", "{tmp}/c.yaml"], "not UTF-8"),
    ("config-alias-bomb", {"c.yaml": "verl:\n  extra_overrides: [a=1]\n" + BOMB}, ["--config", "{tmp}/c.yaml"],
     "YAML aliases"),
    ("config-is-a-list", {"c.yaml": "- 1\n- 2\n"}, ["--config", "{tmp}/c.yaml"], "must hold a mapping"),
    ("config-missing", {}, ["--config", "{tmp}/nope.yaml"], "config file not found"),
    ("config-is-a-directory", {}, ["--config", "{tmp}"], "it is a directory"),
    ("config-huge", {"c.yaml": "# " + "x" * (1 << 20) + "\n"}, ["--config", "{tmp}/c.yaml"], "more than"),
    ("config-malformed-yaml", {"c.yaml": "steps: [1, 2\n"}, ["--config", "{tmp}/c.yaml"], "malformed YAML"),
    ("config-malformed-json", {"c.json": '{"steps": 2,}'}, ["--config", "{tmp}/c.json"], "malformed config file"),
    ("config-section-not-a-mapping", {"c.yaml": "algo: 3\n"}, ["--config", "{tmp}/c.yaml"], "must be a mapping"),
    ("set-without-equals", {}, ["--set", "steps"], "--set expects key=value"),
    ("set-unknown-key", {}, ["--set", "algo.nope=1"], "unknown config key 'algo.nope'"),
    ("set-alias", {}, ["--set", "steps=*x"], "YAML aliases"),
    ("steps-true", {}, ["--set", "steps=true"], "must be an integer, got True"),
    ("seed-true", {}, ["--set", "seed=true"], "must be an integer, got True"),
    ("steps-float", {}, ["--set", "steps=2.5"], "must be an integer"),
    ("seed-huge", {}, ["--set", "seed=99999999999999999999"], "at most"),
    ("seed-negative", {}, ["--seed", "-3"], "seed must be >= 0"),
    ("steps-zero", {}, ["--steps", "0"], "steps must be >= 1"),
    ("grad-clip-negative", {}, ["--set", "optim.grad_clip=-1"], "grad_clip must be > 0"),
    ("grad-clip-nan", {}, ["--set", "optim.grad_clip=.nan"], "finite"),
    ("autocast-unknown", {}, ["--set", "model.autocast=fp8"], "unknown model.autocast 'fp8'"),
    ("micro-batch-negative", {}, ["--set", "optim.micro_batch_rows=-1"], "micro_batch_rows must be >= 0"),
    ("micro-batch-non-additive-loss", {}, ["--method", "clip_cov", "--set", "optim.micro_batch_rows=4"],
     "computes its loss over the whole minibatch"),
    ("weight-decay-negative", {}, ["--set", "optim.weight_decay=-0.1"], "weight_decay must be >= 0"),
    ("target-inf", {}, ["--entropy-target", "inf"], "finite"),
    ("target-nan", {}, ["--entropy-target", "nan"], "finite"),
    ("t-high-inf", {}, ["--t-high", "inf"], "finite"),
    ("alpha-inf", {}, ["--alpha", "inf"], "finite"),
    ("lr-inf", {}, ["--lr", "inf"], "finite"),
    ("rollout-temperature-inf", {}, ["--set", "rollout.temperature=.inf"], "finite"),
    ("alpha-a-word", {}, ["--set", "algo.alpha=high"], "must be a number"),
    ("train-file-a-number", {}, ["--set", "data.train_file=5"], "must be a string"),
    ("train-file-missing", {}, ["--set", "data.train_file={tmp}/none.jsonl"], "data file not found"),
    ("train-file-not-utf8", {"p.jsonl": b'{"problem": "\xff", "answer": "1"}\n'},
     ["--set", "data.train_file={tmp}/p.jsonl"], "not UTF-8"),
    ("train-file-bad-line", {"p.jsonl": '{"problem": "1+1", "answer": "2"}\n[1, 2]\n'},
     ["--set", "data.train_file={tmp}/p.jsonl"], "p.jsonl:2: expected a JSON object"),
    ("device-unknown", {}, ["--set", "model.device=gpu"], "unknown device 'gpu'"),
    ("eval-samples-zero", {}, ["--set", "eval_samples=0"], "eval_samples must be >= 1"),
    ("eval-prompts-zero", {}, ["--set", "eval_prompts=0"], "eval_samples must be >= 1"),
    ("kappa-one", {}, ["--method", "entropy_adv", "--set", "algo.adv_kappa=1"], "kappa > 1"),
    ("method-unknown", {}, ["--method", "ppo"], "unknown method 'ppo'"),
    ("backend-unknown", {}, ["--backend", "tpu"], "unknown backend 'tpu'"),
    ("wandb-unknown", {}, ["--wandb", "maybe"], "unknown wandb mode"),
    ("group-size-one", {}, ["--group-size", "1"], "group_size >= 2"),
    ("replace-alpha-above-one", {}, ["--mode", "replace", "--alpha", "5"], "must be <= 1"),
    ("minibatches-above-rows", {}, ["--set", "optim.num_minibatches=1000"], "exceeds the"),
    ("overrides-not-strings", {}, ["--set", "verl.extra_overrides=[1]"], "list of strings"),
    ("dry-run-embedded", {}, ["--dry-run"], "needs --backend verl"),
    ("model-missing", {}, ["--model", "/no/such/model"], "model path does not exist"),
    ("out-is-a-file", {"f": "x"}, ["--out", "{tmp}/f"], "exists and is not a directory"),
    ("out-under-a-file", {"f": "x"}, ["--out", "{tmp}/f/run"], "lies under a file"),
    ("out-not-writable", {}, ["--out", "/sys/aepo_run"], "cannot create /sys/aepo_run"),
    ("resume-mistyped-dir", {}, ["--out", "{tmp}/no_such_run", "--resume"], "nothing to resume"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_to_train_is_one_line_and_loses_nothing(tmp_path, tiny_model_dir, case):
    _, files, args, match = case
    for name, data in files.items():
        _file(tmp_path, name, data)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "run")]
    before = snapshot(tmp_path)
    res = CliRunner().invoke(app, ["train", "--steps", "2", *FAST, *args] if "--steps" not in args else
                             ["train", *FAST, *args])
    one_line_error(res, before, match)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def damage(run: Path, what: str) -> None:
    if what == "trainer-state":
        (run / "checkpoint" / "trainer_state.json").write_text('{"step": 2, "contr')
    elif what == "model":
        p = run / "checkpoint" / "model.safetensors"
        p.write_bytes(p.read_bytes()[:1000])
    elif what == "optimizer":
        p = run / "checkpoint" / "optimizer.pt"
        p.write_bytes(p.read_bytes()[:500])
    elif what == "config":
        (run / "config.json").unlink()
    elif what == "metrics-middle":
        lines = (run / "metrics.jsonl").read_text().splitlines()
        (run / "metrics.jsonl").write_text(lines[0] + "\n{broken\n" + "\n".join(lines[1:]) + "\n")
    elif what == "metrics-last-not-object":
        with open(run / "metrics.jsonl", "a") as f:
            f.write("[1, 2]\n")


RESUME_CASES = [
    ("trainer-state", [], "trainer_state.json is missing or damaged"),
    ("model", [], "cannot load the model"),
    ("optimizer", [], "optimizer.pt is damaged"),
    ("config", [], "config.json is missing or damaged"),
    ("metrics-middle", [], "metrics.jsonl:2: not valid JSON"),
    ("metrics-last-not-object", [], "metrics.jsonl:3: expected a JSON object"),
    ("nothing", ["--lr", "0.1"], "differs from"),
]


@pytest.mark.parametrize("case", RESUME_CASES, ids=[c[0] for c in RESUME_CASES])
def test_a_damaged_run_is_refused_on_resume_with_one_line_and_nothing_rewritten(tmp_path, a_run, case):
    what, extra, match = case
    run = tmp_path / "run"
    shutil.copytree(a_run, run)
    damage(run, what)
    before = snapshot(tmp_path)
    res = CliRunner().invoke(app, ["train", "--method", "grpo", "--steps", "4", "--out", str(run), *FAST,
                                   "--set", "save_every=1", "--resume", *extra])
    one_line_error(res, before, match)


def test_a_damaged_checkpoint_without_resume_is_still_a_run_that_is_not_overwritten(tmp_path, a_run):
    run = tmp_path / "run"
    shutil.copytree(a_run, run)
    damage(run, "trainer-state")
    before = snapshot(tmp_path)
    res = CliRunner().invoke(app, ["train", "--method", "grpo", "--steps", "2", "--out", str(run), *FAST])
    one_line_error(res, before, "already holds a run")


def test_a_second_train_on_a_busy_run_directory_exits_2_and_the_first_keeps_its_record(tmp_path, tiny_model_dir):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from aepo.rundir import lock\n"
         f"with lock(Path({str(run)!r})) as ok:\n    print(ok, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"  # "another aepo train" holds the run
        before = snapshot(tmp_path)
        res = CliRunner().invoke(app, ["train", "--steps", "2", "--out", str(run), *FAST])
        one_line_error(res, before, "is in use by another process")
    finally:
        holder.kill()
        holder.wait()


def test_a_non_finite_loss_stops_with_one_line_and_keeps_finite_weights(tmp_path, tiny_model_dir):
    # lr 1e30 is a valid number that blows the model up within a few steps: the run stops at the first
    # non-finite loss or gradient, and no non-finite weights are ever saved over a checkpoint
    run = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "--method", "grpo", "--steps", "8", "--lr", "1e30", "--out", str(run),
                                   *FAST, "--set", "save_every=1"])
    assert res.exit_code == 1, res.output
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "FloatingPointError: step" in errors[0] and "Traceback" not in res.output
    assert json.loads((run / "result.json").read_text())["status"] == "failed"
    import torch
    from safetensors.torch import load_file

    if (run / "checkpoint").exists():
        assert all(torch.isfinite(w).all() for w in load_file(run / "checkpoint" / "model.safetensors").values())


def test_the_traceback_shows_only_with_debug(tmp_path, tiny_model_dir, monkeypatch):
    from aepo.embedded import trainer

    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setenv("AEPO_DEBUG", "0")  # restored (unset) after the test, whatever --debug sets
    monkeypatch.setattr(trainer, "update", boom)
    res = CliRunner().invoke(app, ["train", "--steps", "2", "--out", str(tmp_path / "a"), *FAST])
    assert res.exit_code == 1 and "Traceback" not in res.output and "aepo --debug" in res.stderr
    res = CliRunner().invoke(app, ["--debug", "train", "--steps", "2", "--out", str(tmp_path / "b"), *FAST])
    assert isinstance(res.exception, RuntimeError)  # raised through: Python prints the traceback
