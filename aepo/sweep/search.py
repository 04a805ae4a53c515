"""Adaptive search for the best entropy target (issue 16): optuna's own samplers over the target
range a sweep file declares in `search:`, one run per trial, and a pruner on intermediate
held-out scores.

    aepo sweep entropy-targets --config FILE --out DIR --search tpe --trials 9

A trial is one run: a target H* from the sampler, on the file's `step` (so a run id is the grid's
at that point: a search and a grid in one DIR share their finished runs), and a seed, the first
of the file's seeds this target has not run yet (a target sampled again gets its next seed; once
every seed ran, the trial is told their mean at no cost). The trial's value is the run's final
held-out `objective` (greedy, pass@1 or pass@k from in-training validation). Runs keep the grid's
lock, resume, results.parquet and W&B group. The pruner (optuna's median or hyperband, or the
median among runs of the same seed) reads
the objective at every validation step; a pruned run keeps its checkpoint and is recorded
`pruned` with its step in result.json, results.parquet and the trial.

The pick (best_target; SWEEP_DIR/search_<sampler>_s<seed>.json and the last line printed) is where
a curve smoothed through every held-out score of every run is highest, with a bootstrap interval
over runs; the best measured target is given beside it. A search's best single run is a poor pick:
most targets run once, and one run's seed noise is as large as the step between targets (wide lab,
three searches of 10 runs: the best measured target was outside the grid's interval once in three,
the smoothed pick never).

Resume: a trial whose worker died (RUNNING in the storage while its run directory is unlocked)
is marked FAIL and its target and seed are asked again first, so the run resumes from its
checkpoint. Several processes may share one --storage and --out: each takes the next trial
(together they may pass --trials by one per extra process).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import statistics
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

from aepo.rundir import (METRICS, TERMINAL, is_locked, is_number, lock, make_dir, read_json, read_metrics, read_result,
                         run_status, write_json_atomic)
from aepo.sweep.results import SWEEP_RECORD, score_key, sweep_record, write_results
from aepo.sweep.scheduler import Log, default_storage, execute, open_study, persist
from aepo.sweep.spec import Run, Sweep

SAMPLERS = ("grid", "tpe", "gp")  # grid: every run of the file's axes (aepo.sweep.scheduler)
STARTUP_TRIALS = 4  # random trials before TPE / GP model the objective, and before the median pruner acts


class PruneRun(KeyboardInterrupt):
    """Raised from the trainer's progress callback when the pruner stops a run: the trainer
    checkpoints and records it as for an interrupt, and the search records it as pruned."""

    def __init__(self, step: int):
        super().__init__(step)
        self.step = step


def value_of(result: dict[str, Any] | None, objective: str) -> float | None:
    """A finished run's final held-out objective (None: not finished, or no validation)."""
    if not result or result.get("status") != "finished":
        return None
    key = score_key(result, objective)
    v = result.get(key) if key else None
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def study_name(sweep: Sweep, sampler: str, seed: int) -> str:
    what = json.dumps({"search": asdict(sweep.search), "seeds": sweep.axes["seed"], "method": sweep.method},
                      sort_keys=True)
    return f"{sweep.name}-{sampler}-s{seed}-{hashlib.sha1(what.encode()).hexdigest()[:8]}"


def open_search_study(sweep: Sweep, sampler: str, seed: int, storage: str):
    import optuna

    samplers = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP_TRIALS),
                "gp": lambda: optuna.samplers.GPSampler(seed=seed, n_startup_trials=STARTUP_TRIALS)}
    steps = sweep.base.steps if sweep.base is not None else 1
    # no pruning in a run's first quarter: a tiny held-out set's early scores are noise (issue 16 study:
    # pruning from the first validation stopped a seed of the best target in 2 of 3 searches)
    pruners = {"none": optuna.pruners.NopPruner,
               "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=max(1, steps // 4), max_resource=steps),
               "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS,
                                                             n_warmup_steps=steps // 4),
               "seed_median": lambda: seed_median_pruner(STARTUP_TRIALS, steps // 4)}
    # the grid study's storage handling (URL checks, drivers, retries), under this search's own name
    return open_study(sweep, storage, name=study_name(sweep, sampler, seed), sampler=samplers[sampler](),
                      pruner=pruners[sweep.search.pruner]())


def seed_median_pruner(n_startup_trials: int, n_warmup_steps: int):
    """optuna's median rule among the runs of the trial's own training seed.

    A run is stopped at a validation step when its best held-out objective so far is below the
    median of the finished runs of its seed at that step, once `n_startup_trials` of them have
    one. optuna's MedianPruner compares runs of every seed, and a seed's data order moves its
    early scores for every target alike: on the wide lab it stopped the grid's best run (H* = 0.2,
    seed 2: 45.6 % pass@1 at step 100, 86.8 % at 400) in two of three searches."""
    import optuna
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    class SeedMedianPruner(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            step = trial.last_step
            if step is None or step < n_warmup_steps:
                return False
            seed = trial.user_attrs.get("seed")
            peers = [t.intermediate_values[step]
                     for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                     if t.user_attrs.get("seed") == seed and step in t.intermediate_values]
            if len(peers) < n_startup_trials:
                return False
            sofar = trial.intermediate_values.values()  # every report up to `step`, its last
            if study.direction == StudyDirection.MAXIMIZE:
                return max(sofar) < statistics.median(peers)
            return min(sofar) > statistics.median(peers)

    return SeedMedianPruner()


def run_search(sweep: Sweep, sampler: str, trials: int, seed: int, sweep_dir: Path, storage: str | None = None,
               log: Log = print, execute_fn: Callable[..., dict[str, Any]] = execute) -> list[Run]:
    """Run trials until `trials` are complete or pruned; returns the runs the search used.
    `execute_fn(run, resume, progress, log)` trains one run (tests pass a fake)."""
    from optuna.distributions import FloatDistribution

    make_dir(sweep_dir)
    storage = storage or default_storage(sweep_dir)
    study = persist(lambda: open_search_study(sweep, sampler, seed, storage), log)
    space = {"entropy_target": FloatDistribution(sweep.search.low, sweep.search.high, step=sweep.search.step)}
    while True:
        if persist(lambda: counted(study), log) >= trials:
            break
        persist(lambda: requeue_dead(study, sweep), log)
        trial = persist(lambda: study.ask(space), log)
        target = round(trial.params["entropy_target"], 10)
        run = next_run(sweep, target, trial.user_attrs.get("seed"))
        if run is None:  # every seed of this target ran: its mean, no new run
            persist(lambda: tell_mean(study, trial, sweep, target), log)
            continue
        one_trial(study, trial, run, sweep.search.objective, execute_fn, log)
        record_runs(study, sweep, sweep_dir)
        write_results(sweep_dir)
    used = record_runs(study, sweep, sweep_dir)
    write_results(sweep_dir)
    best = best_target(sweep, used)
    write_json_atomic(Path(sweep_dir) / f"search_{sampler}_s{seed}.json",  # the pick, for tables and papers
                      {"sampler": sampler, "search_seed": seed, "trials": trials, **best})
    log(best_summary(best))
    return used


def counted(study) -> int:
    from optuna.trial import TrialState

    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.get_trials(deepcopy=False))


def next_run(sweep: Sweep, target: float, seed: int | None) -> Run | None:
    """The run for this trial: the given seed (a re-asked trial), else the target's first seed
    whose run is neither done nor held by another worker."""
    if seed is not None:
        return sweep.search_run(target, int(seed))
    for s in sweep.axes["seed"]:
        run = sweep.search_run(target, s)
        d = Path(run.config.out)
        if run_status(d, run.config.steps) not in TERMINAL and not is_locked(d):
            return run
    return None


def one_trial(study, trial, run: Run, objective: str, execute_fn, log: Log) -> None:
    """Train (or resume, or read) one trial's run under its lock, and tell the study."""
    from optuna.trial import TrialState

    run_dir = Path(run.config.out)
    with lock(run_dir) as mine:
        status = run_status(run_dir, run.config.steps) if mine else None
        for k, v in {"run_id": run.run_id, "seed": run.config.seed, "host": socket.gethostname(),
                     "pid": os.getpid(), "run_dir": str(run_dir)}.items():
            trial.set_user_attr(k, v)
        if not mine:  # another worker took it between the pick and the lock: ask again
            persist(lambda: study.tell(trial, state=TrialState.FAIL), log)
            return
        if status in ("finished", "pruned"):  # done before (a grid or an earlier search in this DIR)
            result = read_result(run_dir) or {}
            persist(lambda: tell_result(study, trial, result, objective), log)
            return
        log(f"start {run.run_id} (trial {trial.number}, {status})")
        try:
            result = execute_fn(run, status != "pending", pruning_progress(trial, objective), log)
        except PruneRun as p:
            result = {**(read_result(run_dir) or {}), "status": "pruned", "pruned_at_step": p.step}
            write_json_atomic(run_dir / "result.json", result)
            log(f"pruned {run.run_id} at step {p.step}")
        except KeyboardInterrupt:  # the trainer saved a checkpoint; the trial stays RUNNING, so the
            trial.set_user_attr("status", "interrupted")  # next command asks it again (requeue_dead)
            raise
        persist(lambda: tell_result(study, trial, result, objective), log)
        log(f"{result.get('status')} {run.run_id}: {objective} {value_of(result, objective)}")


def tell_result(study, trial, result: dict[str, Any], objective: str) -> None:
    from optuna.trial import TrialState

    trial.set_user_attr("status", result.get("status"))
    if result.get("status") == "pruned":
        trial.set_user_attr("pruned_at_step", result.get("pruned_at_step"))
        study.tell(trial, state=TrialState.PRUNED)
        return
    value = value_of(result, objective)
    if value is None:
        trial.set_user_attr("error", result.get("error") or f"no final held-out {objective}")
    study.tell(trial, value, state=TrialState.COMPLETE if value is not None else TrialState.FAIL)


def tell_mean(study, trial, sweep: Sweep, target: float) -> None:
    """A target whose every seed ran: the trial is told the mean of their objective."""
    from optuna.trial import TrialState

    values = [value_of(read_result(Path(sweep.search_run(target, s).config.out)), sweep.search.objective)
              for s in sweep.axes["seed"]]
    values = [v for v in values if v is not None]
    trial.set_user_attr("reused", "mean of the target's seeds" if values else "every seed held or failed")
    study.tell(trial, sum(values) / len(values) if values else None,
               state=TrialState.COMPLETE if values else TrialState.FAIL)


def pruning_progress(trial, objective: str) -> Callable[[int, int, dict], None]:
    """The trainer's progress callback: report the held-out objective, stop the run if pruned.
    The last step's value is the trial's result, never a reason to prune: the run is done."""

    def progress(step: int, total: int, record: dict[str, Any]) -> None:
        key = score_key(record, objective, "val/")
        if key is not None and math.isfinite(record[key]):
            trial.report(float(record[key]), step)
            if step < total and trial.should_prune():
                raise PruneRun(step)

    return progress


def requeue_dead(study, sweep: Sweep) -> None:
    """RUNNING trials whose run directory nobody holds died with their worker: mark them FAIL and
    ask their target and seed again first (the run resumes from its checkpoint)."""
    from optuna.trial import Trial, TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        run_dir, seed = t.user_attrs.get("run_dir"), t.user_attrs.get("seed")
        if run_dir is None or is_locked(Path(run_dir)):
            continue  # not started yet, or alive
        Trial(study, t._trial_id).set_user_attr("status", "worker died; asked again")
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial({"entropy_target": t.params["entropy_target"]}, user_attrs={"seed": seed})


def record_runs(study, sweep: Sweep, sweep_dir: Path) -> list[Run]:
    """The runs the search used, added to SWEEP_DIR/sweep.json (what results.parquet lists; the
    grid's runs there are kept)."""
    ids: dict[str, Run] = {}
    for t in study.get_trials(deepcopy=False):
        if "run_id" in t.user_attrs and "entropy_target" in t.params:
            run = sweep.search_run(round(t.params["entropy_target"], 10), int(t.user_attrs["seed"]))
            ids.setdefault(run.run_id, run)
    used = list(ids.values())
    record = sweep_record(replace(sweep, runs=used))
    path = Path(sweep_dir) / SWEEP_RECORD
    prev = read_json(path)
    if isinstance(prev, dict):
        mine = {r["run_id"] for r in record["runs"]}
        record["runs"] = [r for r in prev.get("runs", []) if r.get("run_id") not in mine] + record["runs"]
        record["axes"] = list(dict.fromkeys([*prev.get("axes", []), *record["axes"]]))
    write_json_atomic(path, record)
    return used


def held_out_scores(run: Run, objective: str) -> list[tuple[int, float]]:
    """(step, objective) at each of a run's validation steps, read from its metrics.jsonl (a pruned
    run's too, up to where it stopped)."""
    out = []
    for rec in read_metrics(Path(run.config.out) / METRICS):
        key = score_key(rec, objective, "val/")
        if key is not None and is_number(rec.get("step")) and is_number(rec[key]) and math.isfinite(rec[key]):
            out.append((int(rec["step"]), float(rec[key])))
    return out


def best_target(sweep: Sweep, used: list[Run]) -> dict[str, Any]:
    """The search's pick and its interval (analysis.stats.smoothed_best_ci: every held-out score of
    every run the search used, pruned ones included, less seed and step offsets, smoothed over H*
    with a bandwidth of a quarter of the searched range; bootstrap over runs), and the best measured
    target (mean final objective over its finished runs) beside it. Why smooth: a search runs most
    targets once, and one run's score carries its seed's whole noise (wide lab: about 2 points of
    pass@1, as much as the difference between neighbouring targets); neighbours pooled do not."""
    import numpy as np

    from analysis.stats import smoothed_best_ci

    finals: dict[float, list[float]] = {}
    rows = []  # (target, score, run id, seed, step)
    for r in used:
        h = r.config.algo.entropy_target
        v = value_of(read_result(Path(r.config.out)), sweep.search.objective)
        if v is not None:
            finals.setdefault(h, []).append(v)
        rows += [(h, score, r.run_id, r.config.seed, step) for step, score in held_out_scores(r, sweep.search.objective)]
    low, high, step = sweep.search.low, sweep.search.high, sweep.search.step
    point = lo = hi = math.nan
    if rows:
        x, y, run, seed, at = zip(*rows)
        point, lo, hi = smoothed_best_ci(x, y, run, [seed, at], np.round(np.arange(low, high + step / 2, step), 10),
                                         bandwidth=(high - low) / 4)
    measured = max(sorted(finals), key=lambda x: np.mean(finals[x])) if finals else math.nan  # first of ties
    known = lambda v: None if math.isnan(v) else v  # noqa: E731  (JSON has no NaN)
    return {"objective": sweep.search.objective, "best_target": known(point), "ci_low": known(lo),
            "ci_high": known(hi), "best_measured_target": known(measured),
            "best_measured_value": float(np.mean(finals[measured])) if finals else None,
            "best_measured_runs": len(finals[measured]) if finals else 0,
            "finished_runs": sum(map(len, finals.values())), "finished_targets": len(finals),
            "runs": len(used), "scores": len(rows)}


def best_summary(best: dict[str, Any]) -> str:
    """best_target's record in one line."""
    if best["best_measured_target"] is None:
        return "search: no finished run with a held-out score yet"
    seen = (f"best measured H* = {best['best_measured_target']:g} ({best['objective']} "
            f"{best['best_measured_value']:.3f} over {best['best_measured_runs']} run(s)); "
            f"{best['finished_runs']} finished runs at {best['finished_targets']} targets")
    if best["best_target"] is None:
        return (f"search: best target H* = {best['best_measured_target']:g} (held-out scores at fewer than 3 "
                f"targets: no curve); {seen}")
    return (f"search: best target H* = {best['best_target']:g} [{best['ci_low']:g}, {best['ci_high']:g}] (smoothed "
            f"held-out {best['objective']} of every run, pruned ones too, less seed and step offsets; bootstrap "
            f"over runs); {seen}")
