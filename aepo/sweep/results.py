"""The state of each run, read from its directory, and `SWEEP_DIR/results.parquet`.

The run directories are the record of truth: a run is `finished` / `failed` / `interrupted`
as its `result.json` says, `interrupted` when it has metrics but no result (a killed
process), `pending` when it has neither. results.parquet is recomputed from them, so any
worker may rewrite it at any time.

Columns of results.parquet (one row per run, in sweep order):
    run_id, method, <one column per axis> (NaN where a baseline has no such axis),
    status, error, steps_done, steps,
    final_accuracy, best_accuracy    held-out greedy accuracy (`val/<task>/accuracy`), NaN if
                                     the run had no validation,
    final_score                      `critic/score/mean` of the last step (training reward),
    entropy_mean, entropy_std        `actor/entropy` over the second half of the steps,
    entropy_abs_err                  mean |H - H_target| over the second half (NaN: no target),
    entropy_in_band                  fraction of second-half steps within the band around the
                                     target (analysis.control.band_width: max(0.2 H*, 0.05 nats)),
    wall_time_s, run_dir.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from aepo.runlog import read_metrics

TERMINAL = ("finished", "failed")
def entropy_stats(entropy: Iterable[float], target: float | None) -> dict[str, float]:
    """Control quality over the second half of an entropy trajectory.

    entropy: (S,) per-step batch entropy in nats, steps 1..S; the steps after S / 2 are used
    (analysis.control's definition).
    target: H_target in nats, or None / NaN for methods without one (those stats are NaN).
    Returns entropy_mean, entropy_std (population), entropy_abs_err = mean |H - H_target|,
    entropy_in_band = fraction of steps within analysis.control.band_width(H_target).
    """
    from analysis.control import band_width, control_metrics, second_half

    h = np.asarray(list(entropy), dtype=float)
    steps = np.arange(1, h.size + 1, dtype=float)
    nan = float("nan")
    if h.size == 0:
        return {"entropy_mean": nan, "entropy_std": nan, "entropy_abs_err": nan, "entropy_in_band": nan}
    half = h[second_half(steps)]
    out = {"entropy_mean": float(half.mean()), "entropy_std": float(half.std()),
           "entropy_abs_err": nan, "entropy_in_band": nan}
    if target is not None and not math.isnan(target):
        c = control_metrics(steps, h, target, band_width(target))  # the one definition of control quality
        out.update(entropy_abs_err=c["mae_2nd_half"], entropy_in_band=c["in_band_2nd_half"])
    return out


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON record, or None when it is missing or cut short (a run killed mid-write)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def read_result(run_dir: Path) -> dict[str, Any] | None:
    return read_json(run_dir / "result.json")


def run_status(run_dir: Path, steps: int) -> str:
    """pending | interrupted | finished | failed, from the run directory alone."""
    return status_of(read_result(run_dir), run_dir, steps)


def status_of(res: dict[str, Any] | None, run_dir: Path, steps: int) -> str:
    """`run_status` from a result record already read (None: the run has none)."""
    if res is not None:
        status = res.get("status")
        if status == "finished" and res.get("steps_done", 0) < steps:
            return "interrupted"  # finished a shorter schedule: more steps were asked for since
        return status if status in ("finished", "failed") else "interrupted"
    return "interrupted" if (run_dir / "metrics.jsonl").exists() else "pending"


def needs_work(status: str, retry_failed: bool) -> bool:
    return status in ("pending", "interrupted") or (retry_failed and status == "failed")


def accuracy_keys(result: dict[str, Any]) -> tuple[str | None, str | None]:
    """The result keys of final / best held-out greedy accuracy (first validation task)."""
    keys = sorted(k for k in result if k.startswith("final/val/") and k.endswith("/accuracy"))
    if not keys:
        return None, None
    return keys[0], "best/" + keys[0][len("final/"):]


def run_row(run, axes: list[str]) -> dict[str, Any]:
    """One results row for a `spec.Run`."""
    cfg = run.config
    run_dir = Path(cfg.out)
    record = read_result(run_dir)
    res = record or {}
    nan = float("nan")
    row: dict[str, Any] = {"run_id": run.run_id, "method": run.method}
    for a in axes:
        row[a] = run.point.get(a, nan)
    final_k, best_k = accuracy_keys(res)
    metrics = read_metrics(run_dir / "metrics.jsonl")
    target = None if run.baseline else cfg.algo.entropy_target
    row.update({
        "status": status_of(record, run_dir, cfg.steps),
        "error": res.get("error"),
        "steps_done": int(res.get("steps_done", metrics[-1]["step"] if metrics else 0) or 0),
        "steps": cfg.steps,
        "final_accuracy": _num(res.get(final_k)) if final_k else nan,
        "best_accuracy": _num(res.get(best_k)) if best_k else nan,
        "final_score": _num(res.get("final/critic/score/mean")),
        **entropy_stats([m["actor/entropy"] for m in metrics if "actor/entropy" in m], target),
        "wall_time_s": _num(res.get("wall_time_s")),
        "run_dir": str(run_dir),
    })
    summary = read_json(run_dir / "eval" / "summary.json")  # `aepo eval --sweep` scores, kept on recompute
    if summary is not None:
        from aepo.eval.runner import flat_scores

        row.update(flat_scores(summary))
    return row


def collect(sweep):
    """A DataFrame with one row per run of a `spec.Sweep`, in sweep order."""
    import pandas as pd

    axes = [a for a in sweep.axes]
    return pd.DataFrame([run_row(r, axes) for r in sweep.runs])


def write_results(sweep, sweep_dir: Path):
    """Recompute and atomically replace SWEEP_DIR/results.parquet; returns the table."""
    df = collect(sweep)
    out = Path(sweep_dir) / "results.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".results.{os.getpid()}.parquet")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, out)
    return df


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _num(v: Any) -> float:
    return float(v) if is_number(v) else float("nan")
