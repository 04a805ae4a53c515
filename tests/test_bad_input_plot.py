"""`aepo plot` against bad input (issue 13): one line on stderr, exit 2, no traceback, nothing
that existed before changed; a finished run with nothing to analyse is left out and named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aepo.cli import app
from analysis.synthetic import synthetic_study, write_sweep
from conftest import one_line_error, snapshot


def a_sweep(root: Path) -> Path:
    sweep = root / "sweep"
    write_sweep(synthetic_study(seeds=1, steps=20), sweep)
    return sweep


def first_run(sweep: Path) -> Path:
    return sorted((sweep / "runs").iterdir())[0]


def damage(sweep: Path, what: str) -> None:
    run = first_run(sweep)
    if what == "config-a-list":
        (run / "config.json").write_text("[]")
    elif what == "config-null":
        (run / "config.json").write_text('{"config": null}')
    elif what == "config-not-json":
        (run / "config.json").write_text("{oops")
    elif what == "config-not-utf8":
        (run / "config.json").write_bytes(b'{"config": "\xff"}')
    elif what == "metrics-without-step":
        (run / "metrics.jsonl").write_text('{"actor/entropy": 0.5}\n')
    elif what == "metrics-middle-line":
        lines = (run / "metrics.jsonl").read_text().splitlines()
        (run / "metrics.jsonl").write_text("\n".join([lines[0], "{broken", *lines[1:]]) + "\n")
    elif what == "metrics-not-utf8":
        (run / "metrics.jsonl").write_bytes(b'{"step": 1, "x": "\xff"}\n')


DAMAGE = [("config-a-list", "not a run record"), ("config-null", "not a run record"),
          ("config-not-json", "not valid JSON text"), ("config-not-utf8", "not valid JSON text"),
          ("metrics-without-step", "has no integer 'step'"), ("metrics-middle-line", "metrics.jsonl:2: not valid JSON"),
          ("metrics-not-utf8", "not UTF-8")]


@pytest.mark.parametrize("what,match", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_a_damaged_run_record_is_one_line_naming_the_file(tmp_path, what, match):
    sweep = a_sweep(tmp_path)
    damage(sweep, what)
    before = snapshot(tmp_path)
    res = CliRunner().invoke(app, ["plot", str(sweep), "--out", str(tmp_path / "report")])
    one_line_error(res, before, match)


CASES = [
    ("sweep-missing", ["{tmp}/none", "--out", "{tmp}/r"], "no sweep directory"),
    ("sweep-is-a-file", ["{tmp}/f", "--out", "{tmp}/r"], "no sweep directory"),
    ("sweep-without-runs", ["{tmp}", "--out", "{tmp}/r"], "has no runs/ directory"),
    ("out-missing", ["{sweep}"], "--out is required"),
    ("out-is-a-file", ["{sweep}", "--out", "{tmp}/f"], "exists and is not a directory"),
    ("out-under-a-file", ["{sweep}", "--out", "{tmp}/f/r"], "lies under a file"),
    ("out-not-writable", ["{sweep}", "--out", "/sys/aepo_report"], "cannot create /sys/aepo_report"),
    ("runs-missing", ["--runs", "{tmp}/none", "--out", "{tmp}/r"], "is not a run directory"),
    ("wandb-path-malformed", ["--from-wandb", "justone", "--out", "{tmp}/r"], "ENTITY/PROJECT"),
    ("no-source", ["--out", "{tmp}/r"], "give a SWEEP_DIR"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_to_plot_is_one_line_and_changes_nothing(tmp_path, case):
    _, args, match = case
    (tmp_path / "f").write_text("x")
    sweep = a_sweep(tmp_path / "s")
    args = [a.replace("{tmp}", str(tmp_path)).replace("{sweep}", str(sweep)) for a in args]
    before = snapshot(tmp_path)
    res = CliRunner().invoke(app, ["plot", *args])
    one_line_error(res, before, match)


def test_no_finished_run_is_one_line(tmp_path):
    sweep = a_sweep(tmp_path)
    for run in (sweep / "runs").iterdir():
        (run / "result.json").write_text('{"status": "failed"}')
    before = snapshot(tmp_path)
    res = CliRunner().invoke(app, ["plot", str(sweep), "--out", str(tmp_path / "r")])
    one_line_error(res, before, "no finished run to analyse")


def test_when_every_finished_run_is_left_out_the_one_line_error_says_why(tmp_path):
    sweep = a_sweep(tmp_path)
    for run in (sweep / "runs").iterdir():
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        (run / "metrics.jsonl").write_text("".join(json.dumps({**r, "actor/entropy": None}) + "\n" for r in rows))
    before = snapshot(tmp_path)
    res = CliRunner().invoke(app, ["plot", str(sweep), "--out", str(tmp_path / "r")])
    one_line_error(res, before, "(no finite actor/entropy)")
    assert "statuses: finished; left out: " in res.output


def test_a_finished_run_whose_entropy_is_all_nan_is_left_out_and_named(tmp_path):
    sweep = a_sweep(tmp_path)
    run = first_run(sweep)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    (run / "metrics.jsonl").write_text("".join(json.dumps({**r, "actor/entropy": float("nan")}) + "\n" for r in rows))
    res = CliRunner().invoke(app, ["plot", str(sweep), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    report = (tmp_path / "r" / "report.md").read_text()
    assert f"{run.name} (no finite actor/entropy)" in report
