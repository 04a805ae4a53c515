"""Shared CLI helpers: one-line errors, progress that degrades to plain lines."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator, NoReturn

import typer


DEBUG_ENV = "AEPO_DEBUG"  # set (or pass `aepo --debug`) to see tracebacks


def debug() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr and exit `code` (2: bad input; 1: the work itself failed)."""
    message = " ".join(str(message).split())  # one line, whatever the message held
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def crashed(e: BaseException, what: str) -> NoReturn:
    """An unexpected failure: one line naming it (exit 1); the traceback only with --debug."""
    if debug():
        raise e
    first = str(e).splitlines()[0] if str(e) else ""
    fail(f"{what}: {type(e).__name__}: {first} (rerun with aepo --debug for the traceback)", code=1)


@contextmanager
def one_line_errors(what: str) -> Iterator[None]:
    """Every failure of a command as one line: bad input (UserError) exits 2, anything unexpected
    exits 1 naming `what` failed (the traceback with aepo --debug)."""
    from aepo.errors import UserError

    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except UserError as e:
        fail(str(e))
    except Exception as e:
        crashed(e, what)


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
