"""Scheduling a sweep with optuna, and the guard that runs every point at most once.

The study is a grid study over one parameter, `run_id` (the run ids of the sweep, in file
order; the id encodes the grid point, and the point itself is stored in each trial's user
attributes). The study is named `<sweep name>-<hash of the run ids>`, so editing the grid
starts a fresh study while finished run directories are still honoured.

Which run does a worker take next?
  1. `todo`: the runs whose directory says pending / interrupted (and failed ones with
     --retry-failed) that no live worker holds. Empty: the worker is done.
  2. While some run has no trial yet, `study.ask()` and the grid sampler hands out a point.
     Once every run has a trial (a restart after a kill, or --retry-failed), the worker
     enqueues a trial for the first run of `todo` and asks for it: one trial per attempt.
  3. The claim guard (`aepo.rundir.lock`): the worker takes an exclusive `flock` on
     `runs/<run_id>/.lock` before it touches the run. The grid sampler can hand one point to
     two workers (optuna says so); the loser records its trial as PRUNED ("claimed by another
     worker") and asks again. The kernel drops the lock when its holder dies, even by SIGKILL,
     so a killed sweep leaves no stale claim: the restarted sweep takes the run and resumes it
     from its checkpoint.
  4. Under the claim the run's status is read again (another worker may have finished it),
     older RUNNING trials of the run (left by a killed worker) are marked FAIL, and the run is
     trained with `train(cfg, resume=True)`. Exceptions are caught per run: the run and its
     trial are recorded as failed and the worker goes on.

Several machines: give every worker the same `--storage postgresql://...` and the same
SWEEP_DIR on a shared file system (the run directories hold the checkpoints that resumes need
and the locks that keep points unique; flock works on NFSv4). The optuna trials (state and
user attributes: run id, grid point, host, pid, status, error) are the shared record of who
ran what.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from aepo.errors import UserError
from aepo.rundir import interrupt_on_signals, is_locked, lock, make_dir, read_result, run_status, write_json_atomic
from aepo.sweep.results import needs_work, write_results, write_sweep_record
from aepo.sweep.spec import Run, Sweep

Log = Callable[[str], None]


# ---- the optuna study ---------------------------------------------------------------------------
def default_storage(sweep_dir: Path) -> str:
    return f"sqlite:///{(Path(sweep_dir) / 'optuna.db').resolve()}"


def study_name(sweep: Sweep) -> str:
    digest = hashlib.sha1("\n".join(sweep.run_ids).encode()).hexdigest()[:8]
    return f"{sweep.name}-{digest}"


def _grid_sampler(run_ids: list[str]):
    import optuna

    class SweepGridSampler(optuna.samplers.GridSampler):
        """optuna's grid sampler without its `study.stop()` after the last point: that call only
        works inside `study.optimize`, and the worker loop knows on its own when it is done."""

        def after_trial(self, study, trial, state, values) -> None:
            return None

    return SweepGridSampler({"run_id": run_ids}, seed=0)


def open_study(sweep: Sweep, storage: str, name: str | None = None, sampler=None, pruner=None):
    """Create or load the grid study of this sweep (safe to call from several workers), or, with
    `name`, `sampler` and `pruner`, a search's study (aepo.sweep.search). A storage URL that does
    not parse or a database that cannot be reached is a one-line UserError (the password hidden)."""
    import optuna
    import sqlalchemy

    try:
        url = sqlalchemy.engine.make_url(storage)
    except Exception:  # ArgumentError, ValueError: not a URL at all
        raise UserError(f"--storage '{storage[:80]}' is not a database URL (sqlite:///FILE or "
                        "postgresql://USER:PASSWORD@HOST/DB)") from None
    if url.drivername == "postgresql" and not importlib.util.find_spec("psycopg2") and importlib.util.find_spec("psycopg"):
        url = url.set(drivername="postgresql+psycopg")  # the `postgres` extra's driver (psycopg 3)
    shown = url.render_as_string(hide_password=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # SQLite: wait for a busy file; a server: test each pooled connection before use, so a worker
    # outlives a database restart (STORAGE_RETRY_S below covers the outage itself)
    kwargs = {"connect_args": {"timeout": 120}} if url.drivername.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(5):  # workers starting together may race to create the tables
        try:
            rdb = optuna.storages.RDBStorage(url.render_as_string(hide_password=False), engine_kwargs=kwargs)
            return optuna.create_study(study_name=name or study_name(sweep), storage=rdb,
                                       sampler=sampler or _grid_sampler(sweep.run_ids), pruner=pruner,
                                       direction="maximize", load_if_exists=True)
        except ImportError:  # optuna: "Failed to import DB access module"
            raise UserError(f"--storage {shown} needs its database driver (PostgreSQL: "
                            "pip install 'aepo[postgres]')") from None
        except Exception as e:  # sqlalchemy's OperationalError / IntegrityError / ArgumentError
            first = " ".join(str(getattr(e, "orig", None) or e).split())[:160]
            racing = "IntegrityError" in type(e).__name__ or "already exists" in first  # two workers create the tables
            if attempt == 4 or "sqlalchemy" not in type(e).__module__ or not racing:
                raise UserError(f"cannot open the optuna storage {shown}: {type(e).__name__}: {first}") from None
            time.sleep(0.5 * (attempt + 1))


STORAGE_RETRY_S = 60.0  # how long a worker waits for a storage that went away before it gives up


def persist(call: Callable[[], Any], log: Log = print) -> Any:
    """Run one write or read of the optuna storage, retrying while the database is unreachable
    (a restart, a network blip) for up to STORAGE_RETRY_S; then a one-line UserError. The run
    directories are the record of truth, so a run's own result is never lost meanwhile."""
    deadline, wait = time.monotonic() + STORAGE_RETRY_S, 0.5
    while True:
        try:
            return call()
        except Exception as e:
            if not _transient(e):
                raise
            if time.monotonic() > deadline:
                first = " ".join(str(getattr(e, "orig", None) or e).split())[:160]
                raise UserError(f"lost the optuna storage for {STORAGE_RETRY_S:.0f} s ({type(e).__name__}: {first}); "
                                "every run's own record is kept: run the same command again") from None
            log(f"the optuna storage is unreachable ({type(e).__name__}); retrying in {wait:.0f} s")
            time.sleep(wait)
            wait = min(2 * wait, 8.0)


def _transient(e: BaseException | None) -> bool:
    """A lost database connection, raised by SQLAlchemy or wrapped by optuna (StorageInternalError)."""
    seen = 0
    while e is not None and seen < 5:
        if "sqlalchemy" in type(e).__module__ and type(e).__name__ in (
                "OperationalError", "InterfaceError", "DisconnectionError", "PendingRollbackError"):
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def _trials_of(study, run_id: str) -> list:
    return [t for t in study.get_trials(deepcopy=False) if t.params.get("run_id") == run_id]


def next_trial(study, sweep: Sweep, todo: list[str]):
    """Ask for the next trial; enqueue one for todo[0] once the grid has no unassigned point."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    assigned = {t.params.get("run_id") for t in trials}
    waiting = {t.system_attrs.get("fixed_params", {}).get("run_id") for t in trials if t.state == TrialState.WAITING}
    if assigned.union(waiting) >= set(sweep.run_ids) and todo[0] not in waiting:
        study.enqueue_trial({"run_id": todo[0]}, user_attrs={"attempt": "retry"})
    trial = study.ask()
    run_id = trial.suggest_categorical("run_id", sweep.run_ids)
    return trial, run_id


def objective_value(result: dict[str, Any]) -> float:
    """The trial's value: final held-out accuracy, else the last step's training reward."""
    from aepo.sweep.results import accuracy_keys

    final_key, _ = accuracy_keys(result)
    for key in (final_key, "final/critic/score/mean"):
        v = result.get(key) if key else None
        if isinstance(v, (int, float)) and v == v:
            return float(v)
    return 0.0


# ---- one run ------------------------------------------------------------------------------------
def execute(run: Run, resume: bool, progress=None, log: Log = print) -> dict[str, Any]:
    """Train (or resume) one run whose lock the caller holds; never raises except on
    KeyboardInterrupt. Returns result.json."""
    cfg = run.config
    run_dir = Path(cfg.out)
    t0 = time.time()
    try:
        if cfg.backend == "verl":
            from aepo.verl_backend.launch import launch

            result = launch(cfg, resume=resume, log=log, lock=False)
        else:
            from aepo.embedded.trainer import train

            result = train(cfg, resume=resume, progress=progress, log=log, lock=False)
        return result
    except KeyboardInterrupt:
        raise
    except Exception as e:  # one failing run must not stop the sweep
        error = f"{type(e).__name__}: {e}".splitlines()[0]
        log(f"run {run.run_id} failed: {error}")
        result = read_result(run_dir)
        fresh = (run_dir / "result.json").exists() and (run_dir / "result.json").stat().st_mtime >= t0
        if result is None or result.get("status") != "failed" or not fresh:
            # the trainer raised before it could write its record (bad data path, bad model, ...)
            result = {"status": "failed", "error": error, "steps_done": (result or {}).get("steps_done", 0),
                      "steps": cfg.steps, "method": cfg.algo.method, "entropy_target": cfg.algo.entropy_target,
                      "alpha": cfg.algo.alpha, "seed": cfg.seed, "wall_time_s": time.time() - t0,
                      "traceback": traceback.format_exc(limit=5)}
            write_json_atomic(run_dir / "result.json", result)
        return result


# ---- the worker loop ----------------------------------------------------------------------------
@dataclass
class WorkerReport:
    ran: list[str]
    failed: list[str]
    skipped: int  # trials recorded as PRUNED (a duplicate hand-out, or nothing left to do)


def pending(sweep: Sweep, retry_failed: bool, tried: set[str]) -> list[str]:
    """Runs this worker may still take: need work, not held by a live worker, not tried here."""
    out = []
    for r in sweep.runs:
        d = Path(r.config.out)
        if r.run_id in tried or not needs_work(run_status(d, r.config.steps), retry_failed):
            continue
        if not is_locked(d):
            out.append(r.run_id)
    return out


def work(sweep: Sweep, storage: str, sweep_dir: Path, retry_failed: bool = False,
         progress_for: Callable[[Run], Any] | None = None, log: Log = print) -> WorkerReport:
    """Take runs until none is left for this worker; returns what it did."""
    from optuna.trial import TrialState

    study = open_study(sweep, storage)
    write_sweep_record(sweep, sweep_dir)  # (the same content from every worker: results.parquet reads it)
    report, tried = WorkerReport([], [], 0), set()
    while True:
        todo = pending(sweep, retry_failed, tried)
        if not todo:
            return report
        trial, run_id = persist(lambda: next_trial(study, sweep, todo), log)
        run = sweep.run(run_id)
        run_dir = Path(run.config.out)
        with lock(run_dir) as mine:
            status = run_status(run_dir, run.config.steps) if mine else None
            if not mine or not needs_work(status, retry_failed):
                reason = "claimed by another worker" if not mine else f"already {status}"
                persist(lambda: _tell_skipped(study, trial, run, reason, status), log)
                report.skipped += 1
                continue
            tried.add(run_id)  # one attempt per run and worker invocation
            persist(lambda: _start_record(study, trial, run), log)
            log(f"start {run_id} (trial {trial.number}, {status})")
            try:
                result = execute(run, status != "pending", progress_for(run) if progress_for else None, log)
            except KeyboardInterrupt:  # the trainer saved a checkpoint; the next sweep resumes it
                trial.set_user_attr("status", "interrupted")
                study.tell(trial, state=TrialState.FAIL)
                raise
            ok = result.get("status") == "finished"
            persist(lambda: _end_record(study, trial, result, ok), log)
            (report.ran if ok else report.failed).append(run_id)
            log(f"{'done' if ok else 'FAILED'} {run_id}: {result.get('status')}"
                + (f" ({result.get('error')})" if not ok else ""))
        write_results(sweep_dir)


def _start_record(study, trial, run: Run) -> None:
    """User attributes of the attempt (who runs it, where)."""
    attrs = {"run_id": run.run_id, "method": run.method, **run.point,
             "host": socket.gethostname(), "pid": os.getpid(), "run_dir": run.config.out}
    for k, v in attrs.items():
        trial.set_user_attr(k, v)
    _close_dead_trials(study, trial, run)


def _end_record(study, trial, result: dict[str, Any], ok: bool) -> None:
    from optuna.trial import TrialState

    for k, v in {"status": result.get("status"), "error": result.get("error"),
                 "steps_done": result.get("steps_done"), "wall_time_s": result.get("wall_time_s")}.items():
        trial.set_user_attr(k, v)
    if next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number).state != TrialState.RUNNING:
        return  # told already (a retry after the storage came back)
    study.tell(trial, objective_value(result) if ok else None, state=TrialState.COMPLETE if ok else TrialState.FAIL)


def _close_dead_trials(study, trial, run: Run) -> None:
    """Older RUNNING trials of a run whose lock this worker holds died with their worker (a kill,
    a lost database connection): mark them FAIL, so the storage agrees with the run directories."""
    from optuna.trial import Trial, TrialState

    for old in _trials_of(study, run.run_id):
        if old.number != trial.number and old.state == TrialState.RUNNING:
            with _unless_told_meanwhile():  # it was alive: another worker's hand-out, told skipped since
                Trial(study, old._trial_id).set_user_attr("status", f"worker died; taken over by trial {trial.number}")
                study.tell(old.number, state=TrialState.FAIL)


@contextmanager
def _unless_told_meanwhile() -> Iterator[None]:
    """Two workers handed the same run: the one without its lock tells its trial skipped while the
    lock holder closes the trials it sees RUNNING; whichever comes second finds the trial finished,
    which is the outcome it wanted (it used to crash that worker, leaving its next run undone)."""
    from optuna.exceptions import UpdateFinishedTrialError

    try:
        yield
    except UpdateFinishedTrialError:
        pass


def _tell_skipped(study, trial, run: Run, reason: str, status: str | None) -> None:
    """Record a hand-out that was not run: COMPLETE for a run finished outside this study (its
    first record here), PRUNED otherwise (a duplicate hand-out)."""
    from optuna.trial import TrialState

    with _unless_told_meanwhile():  # the run's lock holder closed this hand-out first
        trial.set_user_attr("run_id", run.run_id)
        trial.set_user_attr("skipped", reason)
        if status is not None:  # this worker holds the run's lock: no one else runs it
            _close_dead_trials(study, trial, run)
        has_complete = any(t.state == TrialState.COMPLETE for t in _trials_of(study, run.run_id))
        if status == "finished" and not has_complete:
            result = read_result(Path(run.config.out)) or {}
            trial.set_user_attr("status", "finished")
            study.tell(trial, objective_value(result), state=TrialState.COMPLETE)
        else:
            study.tell(trial, state=TrialState.PRUNED)


# ---- several local workers ---------------------------------------------------------------------
def worker_main(config_path: str, sweep_dir: str, storage: str, retry_failed: bool,
                overrides: dict[str, Any], index: int, parent_pid: int) -> None:
    """Entry point of a spawned worker process: its output goes to SWEEP_DIR/logs/worker-<i>.log."""
    from aepo.sweep.spec import load_sweep

    logs = Path(sweep_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    fd = os.open(logs / f"worker-{index}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    quiet_libraries()
    sweep = load_sweep(config_path, sweep_dir).with_overrides(overrides)

    def orphan_check(run: Run):
        def progress(step: int, total: int, record: dict) -> None:
            if os.getppid() != parent_pid:  # the sweep process died: checkpoint and stop
                raise KeyboardInterrupt
        return progress

    log = lambda m: print(f"[worker {index}] {m}", flush=True)  # noqa: E731
    try:
        with interrupt_on_signals():
            work(sweep, storage, Path(sweep_dir), retry_failed, orphan_check, log)
    except KeyboardInterrupt:
        sys.exit(130)


def quiet_libraries() -> None:
    """No tqdm bars from transformers' save_pretrained inside a sweep's display."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass


# ---- the whole sweep ---------------------------------------------------------------------------
def threads_per_worker(workers: int) -> int:
    """Cores split evenly across local workers (0: one worker keeps torch's default)."""
    if workers <= 1:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // workers)


def run_sweep(sweep: Sweep, config_path: Path, sweep_dir: Path, storage: str | None = None, workers: int = 1,
              retry_failed: bool = False, overrides: dict[str, Any] | None = None, log: Log = print):
    """Run every run of the sweep that needs work, with `workers` local worker processes.

    workers == 1 works in this process; N > 1 spawns N processes (logs in SWEEP_DIR/logs/).
    A run's `threads` of 0 becomes cores // N per worker, so N workers share the cores.
    Returns the results table (also in SWEEP_DIR/results.parquet).
    """
    import multiprocessing as mp
    import signal

    from aepo.sweep.progress import SweepMonitor

    make_dir(sweep_dir)
    storage = storage or default_storage(sweep_dir)
    overrides = dict(overrides or {})
    if sweep.runs and sweep.runs[0].config.threads == 0 and threads_per_worker(workers):
        overrides["threads"] = threads_per_worker(workers)
    sweep = sweep.with_overrides(overrides)
    write_sweep_record(sweep, sweep_dir)  # what results.parquet is built from (aepo.sweep.results)
    open_study(sweep, storage)  # created once here, before workers race to create it

    with interrupt_on_signals(), SweepMonitor(sweep, announce_runs=workers > 1):  # (1 worker: it announces its runs)
        if workers <= 1:
            quiet_libraries()
            work(sweep, storage, sweep_dir, retry_failed, log=log)
        else:
            ctx = mp.get_context("spawn")
            procs = [ctx.Process(target=worker_main, args=(str(config_path), str(sweep_dir), storage, retry_failed,
                                                           overrides, i, os.getpid()), daemon=False)
                     for i in range(workers)]
            for p in procs:
                p.start()
            try:
                for p in procs:
                    p.join()
            except KeyboardInterrupt:
                for p in procs:  # ask each to checkpoint its run and stop (a second signal is ignored)
                    if p.is_alive():
                        os.kill(p.pid, signal.SIGTERM)
                for p in procs:
                    p.join()
                raise
    return write_results(sweep_dir)
