"""`aepo sweep entropy-targets` against bad input (issue 13): one line on stderr, exit 2, no
traceback, nothing that existed before changed, no run started."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from aepo.cli import app
from conftest import one_line_error, snapshot

GOOD = "base: {steps: 2, threads: 1, wandb: 'off'}\naxes: {entropy_target: [0.3]}\n"
BOMB = "".join(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}" if i else '"x"'] * 9) + "]\n" for i in range(9))

# (id, files {name: content}, arguments ({tmp}: the test folder), expected text)
CASES = [
    ("file-not-utf8", {"s.yaml": b"axes: {seed: [0]}\nname: \xff\n"}, [], "not UTF-8"),
    ("file-alias-bomb", {"s.yaml": "base:\n  verl:\n    extra_overrides: [a=1]\n" + BOMB}, [], "YAML aliases"),
    ("file-is-a-list", {"s.yaml": "- 1\n"}, [], "must hold a mapping"),
    ("file-missing", {}, ["--config", "{tmp}/none.yaml"], "config file not found"),
    ("unknown-key", {"s.yaml": "axez: {seed: [0]}\n"}, [], "unknown key 'axez'"),
    ("unknown-axis", {"s.yaml": "axes: {temperature: [1.0]}\n"}, [], "unknown axis 'temperature'"),
    ("empty-axis", {"s.yaml": "axes: {alpha: []}\n"}, [], "axis 'alpha' is empty"),
    ("axis-a-list-value", {"s.yaml": "axes: {alpha: [[0.1]]}\n"}, [], "must be a number"),
    ("axis-bool", {"s.yaml": "axes: {alpha: [true]}\n"}, [], "must be a number, got True"),
    ("axis-same-number-twice", {"s.yaml": "axes: {entropy_target: [0, 0.0]}\n"}, [], "repeats a value"),
    ("axis-same-number-as-text", {"s.yaml": "axes: {entropy_target: [0.5, '5e-1']}\n"}, [], "repeats a value"),
    ("axis-inf", {"s.yaml": "axes: {entropy_target: [.inf]}\n"}, ["--dry-run"], "finite"),
    ("axis-nan", {"s.yaml": "axes: {alpha: [.nan]}\n"}, ["--dry-run"], "finite"),
    ("axis-seed-float", {"s.yaml": "axes: {seed: [0.5]}\n"}, [], "must be an integer"),
    ("axis-out-of-range", {"s.yaml": "axes: {entropy_target: [-1]}\n"}, ["--dry-run"], "entropy target H must be >= 0"),
    ("axis-unsafe-word", {"s.yaml": "axes: {controller: ['a b']}\n"}, [], "may hold only letters"),
    ("bad-name", {"s.yaml": "name: 'a/b'\n"}, [], "may hold only letters"),
    ("unknown-method", {"s.yaml": "method: ppo\n"}, [], "unknown method 'ppo'"),
    ("unknown-baseline", {"s.yaml": "baselines: [ppo]\n"}, [], "unknown baseline 'ppo'"),
    ("baseline-twice", {"s.yaml": "baselines: [grpo, grpo]\n"}, [], "listed twice"),
    ("base-missing", {"s.yaml": "base: none.yaml\n"}, [], "config file not found"),
    ("base-not-utf8", {"s.yaml": "base: b.yaml\n", "b.yaml": b"steps: \xff\n"}, [], "not UTF-8"),
    ("base-bad-value", {"s.yaml": "base: {steps: true}\n"}, [], "must be an integer, got True"),
    ("base-yaml-off-is-a-bool", {"s.yaml": "base: {wandb: off}\n"}, [], "quote the value, e.g. \"off\""),
    ("base-unknown-key", {"s.yaml": "base: {algo: {nope: 1}}\n"}, [], "unknown config key 'algo.nope'"),
    ("out-is-a-file", {"s.yaml": GOOD, "f": "x"}, ["--out", "{tmp}/f"], "exists and is not a directory"),
    ("out-under-a-file", {"s.yaml": GOOD, "f": "x"}, ["--out", "{tmp}/f/sweep"], "lies under a file"),
    ("storage-not-a-url", {"s.yaml": GOOD}, ["--storage", "notaurl"], "is not a database URL"),
    ("storage-no-driver", {"s.yaml": GOOD}, ["--storage", "mysql://u:pw@127.0.0.1:1/db"], "needs its database driver"),
    ("storage-unreachable", {"s.yaml": GOOD}, ["--storage", "sqlite:////no/such/dir/optuna.db"],
     "cannot open the optuna storage"),
    ("workers-zero", {"s.yaml": GOOD}, ["--workers", "0"], "--workers must be >= 1"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_to_a_sweep_is_one_line_and_starts_no_run(tmp_path, case):
    _, files, args, match = case
    for name, data in files.items():
        (tmp_path / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--config" not in args:
        args += ["--config", str(tmp_path / "s.yaml")]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "sweep")]
    before = snapshot(tmp_path)
    res = CliRunner().invoke(app, ["sweep", "entropy-targets", *args])
    one_line_error(res, before, match)
    assert not list(tmp_path.rglob("metrics.jsonl"))


def test_the_storage_password_never_reaches_the_error(tmp_path):
    (tmp_path / "s.yaml").write_text(GOOD)
    res = CliRunner().invoke(app, ["sweep", "entropy-targets", "--config", str(tmp_path / "s.yaml"), "--out",
                                   str(tmp_path / "sw"), "--storage", "mysql://me:hunter2@127.0.0.1:1/db"])
    assert res.exit_code == 2 and "hunter2" not in res.output and "***" in res.stderr
