"""The claim guard: a run is touched only by the worker holding its lock.

`claim(run_dir)` takes an exclusive, non-blocking `flock` on `run_dir/.lock` and writes the
owner (host, pid, since) into it for display. The kernel releases a flock when its holder
dies, SIGKILL included, so a killed sweep leaves no stale claim to clean up: the restarted
sweep simply takes the run. On a shared file system (several machines) flock needs NFSv4 or
another file system with working locks.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

LOCK = ".lock"


@contextmanager
def claim(run_dir: Path) -> Iterator[bool]:
    """Hold an exclusive, non-blocking flock on run_dir/.lock; yields False if someone holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        try:
            yield True
        finally:
            os.ftruncate(fd, 0)  # an empty lock file: nobody holds the run
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def is_claimed(run_dir: Path) -> bool:
    """True while a live process holds the run's lock (probes by trying to take it)."""
    if not (run_dir / LOCK).exists():
        return False
    with claim(run_dir) as mine:
        return not mine


def lock_owner(run_dir: Path) -> dict[str, Any] | None:
    """Who holds (or, after a kill, last held) the run; for display only."""
    try:
        text = (run_dir / LOCK).read_text()
        return json.loads(text) if text else None
    except (OSError, json.JSONDecodeError):
        return None
