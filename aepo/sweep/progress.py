"""The sweep's progress display: runs done / total, each live run's step, ETA.

It reads only the run directories (result.json, the last line of metrics.jsonl, the lock's
owner), once a second in a background thread, so it works the same for one in-process worker
and for N worker processes. On a terminal it draws rich bars; otherwise it prints a plain line
when a run starts or ends and a status line every `plain_every` seconds.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from aepo.rundir import TERMINAL, run_status
from aepo.rundir import lock_owner
from aepo.sweep.spec import Sweep


def last_step(metrics: Path) -> int:
    """Step of the last complete record of a metrics.jsonl (reads only its tail)."""
    try:
        with open(metrics, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 8192))
            lines = f.read().splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def _alive(owner: dict | None) -> bool:
    if not owner:
        return False
    if owner.get("host") != socket.gethostname():
        return True  # another machine's worker: trust its lock
    try:
        os.kill(int(owner["pid"]), 0)
        return True
    except (OSError, ValueError, KeyError):
        return False


@dataclass
class Snapshot:
    done: int  # runs finished or failed
    failed: int
    total: int
    steps_done: int
    steps_total: int
    live: dict[str, tuple[int, int]]  # run id -> (step, steps)
    statuses: dict[str, str]


def snapshot(sweep: Sweep) -> Snapshot:
    statuses, live, steps_done = {}, {}, 0
    for r in sweep.runs:
        d, steps = Path(r.config.out), r.config.steps
        st = run_status(d, steps)
        step = steps if st == "finished" else min(last_step(d / "metrics.jsonl"), steps)
        if st not in TERMINAL and _alive(lock_owner(d)):
            st = "running"
            live[r.run_id] = (step, steps)
        statuses[r.run_id] = st
        steps_done += step
    failed = sum(s == "failed" for s in statuses.values())
    done = sum(s in TERMINAL for s in statuses.values())
    return Snapshot(done, failed, len(sweep.runs), steps_done, sum(r.config.steps for r in sweep.runs),
                    live, statuses)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA ?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"ETA {h}h{m:02d}m" if h else f"ETA {m}m{s:02d}s"


class SweepMonitor:
    """Context manager that shows the sweep's progress until it exits."""

    def __init__(self, sweep: Sweep, interval: float = 1.0, plain_every: float = 30.0, tty: bool | None = None,
                 announce_runs: bool = True):
        self.sweep, self.interval, self.plain_every = sweep, interval, plain_every
        self.announce_runs = announce_runs  # plain mode: a line per run start / end
        self.tty = sys.stderr.isatty() if tty is None else tty
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._t0 = time.time()
        self._first: Snapshot | None = None

    def eta(self, snap: Snapshot) -> float | None:
        """Remaining steps / steps per second since the sweep started (this invocation)."""
        assert self._first is not None
        gained, elapsed = snap.steps_done - self._first.steps_done, time.time() - self._t0
        if gained <= 0 or elapsed <= 0:
            return None
        return (snap.steps_total - snap.steps_done) / (gained / elapsed)

    def line(self, snap: Snapshot) -> str:
        live = ", ".join(f"{rid} step {s}/{n}" for rid, (s, n) in snap.live.items()) or "-"
        failed = f" ({snap.failed} failed)" if snap.failed else ""
        return (f"sweep {self.sweep.name}: runs {snap.done}/{snap.total} done{failed} | running: {live} | "
                f"{format_eta(self.eta(snap))}")

    def __enter__(self) -> "SweepMonitor":
        self._first = snapshot(self.sweep)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    # ---- the two renderings ----------------------------------------------------------------------
    def _loop(self) -> None:
        if self.tty:
            self._rich_loop()
        else:
            self._plain_loop()

    def _plain_loop(self) -> None:
        last_print, prev = 0.0, dict(self._first.statuses)
        while True:
            stopping = self._stop.wait(self.interval)
            snap = snapshot(self.sweep)
            changed = {rid: st for rid, st in snap.statuses.items() if prev.get(rid) != st}
            for rid, st in changed.items() if self.announce_runs else ():
                print(f"{rid}: {st}", file=sys.stderr, flush=True)
            prev = snap.statuses
            if changed or time.time() - last_print >= self.plain_every or stopping:
                print(self.line(snap), file=sys.stderr, flush=True)
                last_print = time.time()
            if stopping:
                return

    def _rich_loop(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[info]}"), redirect_stderr=True, redirect_stdout=True)
        tasks: dict[str, int] = {}
        with bar:
            main = bar.add_task(f"sweep {self.sweep.name}", total=None, info="")
            while True:
                stopping = self._stop.wait(self.interval)
                snap = snapshot(self.sweep)
                failed = f", {snap.failed} failed" if snap.failed else ""
                bar.update(main, completed=snap.done, total=snap.total,
                           info=f"runs{failed} | {format_eta(self.eta(snap))}")
                for rid in list(tasks):
                    if rid not in snap.live:
                        bar.remove_task(tasks.pop(rid))
                for rid, (step, steps) in snap.live.items():
                    if rid not in tasks:
                        tasks[rid] = bar.add_task(f"  {rid}", total=steps, info="steps")
                    bar.update(tasks[rid], completed=step, total=steps)
                if stopping:
                    return
