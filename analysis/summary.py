"""The run table: one row per finished run with everything the claims, tables and figures use."""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from analysis.control import per_run
from analysis.load import Frames
from analysis.scores import run_scores


def run_table(frames: Frames, th: Mapping[str, Any]) -> pd.DataFrame:
    """runs columns + entropy trend + control metrics (AEPO family) + score columns.

    th: the claim thresholds (`window` is used here)."""
    table = per_run(frames.steps, frames.runs, th["window"])
    return table.merge(run_scores(frames.benchmarks), on="run_id", how="left")
