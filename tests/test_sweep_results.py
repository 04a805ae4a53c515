"""Per-run entropy statistics and run status, on hand-made numbers and directories."""

import json
import math

import pytest

from aepo.rundir import run_status
from aepo.sweep.results import entropy_stats, needs_work


def test_entropy_stats_use_only_the_second_half():
    # first half (ignored): 9, 9; second half: 0.5, 0.6, 0.4 -> mean 0.5
    h = [9.0, 9.0, 0.5, 0.6, 0.4]
    s = entropy_stats(h, target=0.5)
    assert s["entropy_mean"] == pytest.approx(0.5)
    # population std of (0.5, 0.6, 0.4): sqrt((0 + 0.01 + 0.01) / 3)
    assert s["entropy_std"] == pytest.approx(math.sqrt(0.02 / 3))
    # |H - 0.5| = 0, 0.1, 0.1 -> mean 0.2 / 3; the band at 0.5 is +-max(0.2 * 0.5, 0.05) = 0.1: all three
    assert s["entropy_abs_err"] == pytest.approx(0.2 / 3)
    assert s["entropy_in_band"] == 1.0
    s = entropy_stats([9.0, 9.0, 0.2, 0.26, 0.1], target=0.2)  # band at 0.2: +-0.05 (the floor)
    assert s["entropy_in_band"] == pytest.approx(1 / 3)


def test_entropy_stats_band_edge_counts_as_inside():
    s = entropy_stats([0.25, 0.15], target=0.2)  # second half: [0.15], 0.05 from the target
    assert s["entropy_in_band"] == 1.0


def test_results_and_the_report_share_one_definition_of_in_band():
    # issue 12.12: results.parquet said +-0.05 nats, the report max(0.2 H*, 0.05)
    import numpy as np

    from analysis.control import band_width, control_metrics

    h = np.array([0.9, 0.8, 0.72, 0.61, 0.58, 0.7, 0.66, 0.52])
    ours = entropy_stats(h, target=0.6)["entropy_in_band"]
    report = control_metrics(np.arange(1, 9), h, 0.6, band_width(0.6))["in_band_2nd_half"]
    assert ours == report == 1.0  # a +-0.05 band would say 0.5


def test_entropy_stats_without_a_target_leave_target_columns_nan():
    s = entropy_stats([1.0, 0.8, 0.6, 0.4], target=None)
    assert s["entropy_mean"] == pytest.approx(0.5)
    assert math.isnan(s["entropy_abs_err"]) and math.isnan(s["entropy_in_band"])


def test_entropy_stats_of_an_empty_run_are_nan():
    assert all(math.isnan(v) for v in entropy_stats([], target=0.5).values())


def test_run_status_reads_the_run_directory(tmp_path):
    d = tmp_path / "r"
    assert run_status(d, steps=5) == "pending"
    d.mkdir()
    (d / "metrics.jsonl").write_text(json.dumps({"step": 1}) + "\n")
    assert run_status(d, steps=5) == "interrupted"  # killed: metrics but no result
    (d / "result.json").write_text(json.dumps({"status": "finished", "steps_done": 5}))
    assert run_status(d, steps=5) == "finished"
    assert run_status(d, steps=8) == "interrupted"  # more steps asked for since: resume
    (d / "result.json").write_text(json.dumps({"status": "failed", "error": "boom"}))
    assert run_status(d, steps=5) == "failed"


def test_failed_runs_need_work_only_when_retrying():
    assert needs_work("pending", False) and needs_work("interrupted", False)
    assert not needs_work("finished", True)
    assert not needs_work("failed", False) and needs_work("failed", True)
