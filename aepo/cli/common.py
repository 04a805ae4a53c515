"""Shared CLI helpers: one-line errors, progress that degrades to plain lines."""

from __future__ import annotations

import sys
import time
from typing import Any, NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


class StepProgress:
    """A bar with ETA on a terminal; plain lines every `every` steps otherwise."""

    def __init__(self, label: str, every: int = 25):
        self.label, self.every = label, every
        self.tty = sys.stderr.isatty()
        self._bar = None
        self._t0 = time.time()

    def __enter__(self) -> "StepProgress":
        if self.tty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), TextColumn("{task.fields[info]}"), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=None, info="")
        return self

    def __call__(self, step: int, total: int, record: dict[str, Any]) -> None:
        info = (f"H={record.get('actor/entropy', float('nan')):.3f} "
                f"score={record.get('critic/score/mean', float('nan')):.2f}")
        if self._bar is not None:
            self._bar.update(self._task, completed=step, total=total, info=info)
        elif step % self.every == 0 or step == total:
            el = time.time() - self._t0
            print(f"{self.label} step {step}/{total} {info} elapsed {el:.0f}s", file=sys.stderr, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
