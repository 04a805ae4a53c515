"""Sweeps: grids of training runs over entropy targets, alpha and seeds, baselines beside them.

- `spec`: the sweep file format, its validation and the expansion into runs.
- `claims`: the per-run lock that keeps every point from running twice.
- `scheduler`: the optuna grid study, the worker loop and the local worker processes.
- `results`: `results.parquet` (its one writer) and `entropy_stats`; run status is aepo.rundir's.
- `progress`: the display (runs done / total, live runs' steps, ETA).
"""

from aepo.sweep.results import entropy_stats
from aepo.sweep.spec import AXES, Run, Sweep, SweepError, load_sweep

__all__ = ["AXES", "Run", "Sweep", "SweepError", "entropy_stats", "load_sweep"]
