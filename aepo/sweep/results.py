"""`SWEEP_DIR/results.parquet`: one row per run, recomputed from the run directories.

The run directories are the record of truth (their status: aepo.rundir); results.parquet is
rebuilt from them by `write_results`, its one writer, from the sweep's record SWEEP_DIR/sweep.json
(the runs, their grid points and directories, written when a sweep starts), so any worker, and
`aepo eval --sweep`, may rewrite it at any time.

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
    wall_time_s, host, pid (the machine and process that last worked on it), machine (its CPU,
    instruction set and GPU: aepo.rundir.machine_label), run_dir,
    eval/<benchmark>/<score>         `aepo eval --sweep` scores of the final checkpoint, if any.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from aepo.errors import UserError
from aepo.rundir import (eval_scores, is_number, machine_label, read_json, read_metrics, read_result, status_of,
                         write_json_atomic)

SWEEP_RECORD = "sweep.json"


def entropy_stats(entropy: Iterable[float], target, targets: Iterable[float] | None = None) -> dict[str, float]:
    """Control quality over the second half of an entropy trajectory.

    entropy: (S,) per-step batch entropy in nats, steps 1..S; the steps after S / 2 are used
    (analysis.control's definition).
    target: H_target in nats, or None / NaN for methods without one (those stats are NaN);
    targets: (S,) the target in force at each step where a schedule moved it (controller/target).
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
        tgt = np.asarray(list(targets), dtype=float) if targets is not None else np.full(h.size, float(target))
        tgt = np.where(np.isnan(tgt), float(target), tgt) if tgt.size == h.size else np.full(h.size, float(target))
        c = control_metrics(steps, h, tgt, band_width(tgt))  # the one definition of control quality
        out.update(entropy_abs_err=c["mae_2nd_half"], entropy_in_band=c["in_band_2nd_half"])
    return out


def needs_work(status: str, retry_failed: bool) -> bool:
    return status in ("pending", "interrupted") or (retry_failed and status == "failed")


SCORE_SUFFIX = {"greedy": "/accuracy", "pass@1": "/mean@", "pass@k": "/pass@"}  # held-out scores by name


def score_key(record: dict[str, Any], score: str, prefix: str = "final/val/") -> str | None:
    """The key of a held-out `score` (greedy | pass@1 | pass@k) of the first validation task in a
    result.json (prefix 'final/val/' or 'best/val/') or a step record ('val/'); None if absent."""
    suffix = SCORE_SUFFIX[score]
    keys = sorted(k for k in record if k.startswith(prefix)
                  and (k.endswith(suffix) if score == "greedy" else suffix in k))
    return keys[0] if keys else None


def accuracy_keys(result: dict[str, Any]) -> tuple[str | None, str | None]:
    """The result keys of final / best held-out greedy accuracy (first validation task)."""
    key = score_key(result, "greedy")
    return (key, "best/" + key[len("final/"):]) if key else (None, None)


def sweep_record(sweep) -> dict[str, Any]:
    """What results.parquet is built from: the sweep's axes and, per run, its id, method, grid
    point, directory, budget and target (None for a baseline)."""
    return {"name": sweep.name, "axes": sweep.columns,
            "runs": [{"run_id": r.run_id, "method": r.method, "point": r.point, "run_dir": r.config.out,
                      "steps": r.config.steps, "entropy_target": None if r.baseline else r.config.algo.entropy_target}
                     for r in sweep.runs]}


def write_sweep_record(sweep, sweep_dir: Path) -> None:
    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(sweep_dir) / SWEEP_RECORD, sweep_record(sweep))


def run_row(run: dict[str, Any], axes: list[str]) -> dict[str, Any]:
    """One results row for a run of the sweep record."""
    run_dir = Path(run["run_dir"])
    record = read_result(run_dir)
    res = record or {}
    nan = float("nan")
    row: dict[str, Any] = {"run_id": run["run_id"], "method": run["method"]}
    for a in axes:
        row[a] = run["point"].get(a, nan)
    final_k, best_k = accuracy_keys(res)
    metrics = read_metrics(run_dir / "metrics.jsonl")
    row.update({
        "status": status_of(record, run_dir, run["steps"]),
        "error": res.get("error"),
        "steps_done": int(res.get("steps_done", metrics[-1]["step"] if metrics else 0) or 0),
        "steps": run["steps"],
        "final_accuracy": _num(res.get(final_k)) if final_k else nan,
        "best_accuracy": _num(res.get(best_k)) if best_k else nan,
        "final_score": _num(res.get("final/critic/score/mean")),
        **entropy_stats([m["actor/entropy"] for m in metrics if "actor/entropy" in m], run["entropy_target"],
                        [m.get("controller/target", float("nan")) for m in metrics if "actor/entropy" in m]),
        "wall_time_s": _num(res.get("wall_time_s")),
        "host": res.get("host"),  # the machine and process that last worked on the run
        "pid": res.get("pid"),
        "machine": machine_label(res.get("machine")),
        "run_dir": str(run_dir),
        **eval_scores(run_dir),  # `aepo eval --sweep` scores, kept on every recompute
    })
    return row


def write_results(sweep_dir: Path):
    """Recompute SWEEP_DIR/results.parquet from the sweep record and the run directories, and
    replace it atomically (the file's one writer); returns the table."""
    import pandas as pd

    record = read_json(Path(sweep_dir) / SWEEP_RECORD)
    if not isinstance(record, dict):
        raise UserError(f"{sweep_dir} has no readable {SWEEP_RECORD}: run its `aepo sweep entropy-targets` "
                        "command once more (finished runs are skipped) to write it")
    df = pd.DataFrame([run_row(r, record["axes"]) for r in record["runs"]])
    out = Path(sweep_dir) / "results.parquet"
    tmp = out.with_name(f".results.{os.getpid()}.parquet")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, out)
    return df


def _num(v: Any) -> float:
    return float(v) if is_number(v) else float("nan")
