"""The sweep display reads run directories only: counts, live runs, ETA, plain lines."""

import io
import json
import sys
from pathlib import Path

import yaml

from aepo.rundir import lock as claim
from aepo.sweep.progress import SweepMonitor, format_eta, last_step, snapshot
from aepo.sweep.spec import load_sweep


def make_sweep(tmp_path: Path):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"base": {"steps": 10}, "axes": {"entropy_target": [0.3, 0.7]},
                                 "baselines": ["grpo"]}))
    return load_sweep(p, tmp_path / "out")


def write_metrics(run_dir: Path, steps: int) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps({"step": s}) + "\n" for s in range(1, steps + 1)))


def test_last_step_skips_a_torn_last_line(tmp_path):
    write_metrics(tmp_path, 7)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 8, "actor/ent')  # a writer killed mid-line
    assert last_step(tmp_path / "metrics.jsonl") == 7


def test_snapshot_counts_done_failed_and_live_runs(tmp_path):
    sweep = make_sweep(tmp_path)
    done, live, failed = (Path(r.config.out) for r in sweep.runs)
    write_metrics(done, 10)
    (done / "result.json").write_text(json.dumps({"status": "finished", "steps_done": 10}))
    failed.mkdir(parents=True)
    (failed / "result.json").write_text(json.dumps({"status": "failed", "error": "x"}))
    write_metrics(live, 4)
    with claim(live):  # a live worker holds it
        snap = snapshot(sweep)
    assert (snap.done, snap.failed, snap.total) == (2, 1, 3)
    assert snap.live == {sweep.runs[1].run_id: (4, 10)}
    assert (snap.steps_done, snap.steps_total) == (14, 30)
    assert snapshot(sweep).live == {}  # released: no longer shown as running


def test_plain_lines_when_not_on_a_terminal(tmp_path, monkeypatch):
    sweep = make_sweep(tmp_path)
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    with SweepMonitor(sweep, interval=0.01, tty=False):
        write_metrics(Path(sweep.runs[0].config.out), 10)
        (Path(sweep.runs[0].config.out) / "result.json").write_text(json.dumps({"status": "finished", "steps_done": 10}))
    text = err.getvalue()
    assert f"{sweep.runs[0].run_id}: finished" in text
    assert "runs 1/3 done" in text.splitlines()[-1]


def test_eta_formats_minutes_and_hours():
    assert format_eta(None) == "ETA ?"
    assert format_eta(125) == "ETA 2m05s"
    assert format_eta(3 * 3600 + 60) == "ETA 3h01m"
