"""Per-run accuracy scores, one column per (source, measure, point).

A score key is `source:measure:point`:
- source: `eval` (an `aepo eval` of the final checkpoint, averaged over its benchmarks with equal
  weight, as the paper's Table 2 average) or `val` (the trainer's in-training held-out validation);
- measure: `greedy` (T = 0 accuracy), `pass@1` (sampled at T = 1, mean over k samples), `pass@k`;
- point: `final` (last checkpoint) or `best` (best validation over training; `val` only; it
  picks the maximum of noisy values, so it is biased upwards and reported beside `final`).
"""

from __future__ import annotations

import pandas as pd

MEASURES = ("greedy", "pass@1", "pass@k")
SOURCE_NAMES = {"eval": "aepo eval", "val": "in-training validation"}


def score_key(source: str, measure: str, point: str) -> str:
    return f"{source}:{measure}:{point}"


def score_label(key: str, k: float | None = None) -> str:
    """'greedy accuracy, final (in-training validation)'."""
    source, measure, point = key.split(":")
    m = {"greedy": "greedy accuracy", "pass@1": "sampled pass@1",
         "pass@k": f"pass@{int(k)}" if k and k == k else "pass@k"}[measure]
    return f"{m}, {point} ({SOURCE_NAMES.get(source, source)})"


def table_score_label(table: pd.DataFrame, key: str) -> str:
    """`score_label` with the k of pass@k read off the run table's `k:<source>` column."""
    k = table.get(f"k:{key.split(':')[0]}")
    return score_label(key, float(k.max()) if k is not None else None)


def run_scores(benchmarks: pd.DataFrame) -> pd.DataFrame:
    """One row per run_id: every available score key as a column (fraction in [0, 1]), plus
    `k:<source>` (the k of pass@k). Scores are the mean over the run's benchmarks."""
    if benchmarks.empty:
        return pd.DataFrame({"run_id": pd.Series(dtype=str)})
    cols = {}
    for (source, point), g in benchmarks.groupby(["source", "point"]):
        per_run = g.groupby("run_id")[list(MEASURES)].mean()
        for m in MEASURES:
            if per_run[m].notna().any():
                cols[score_key(source, m, point)] = per_run[m]
        if g["k"].notna().any():
            cols[f"k:{source}"] = g.groupby("run_id")["k"].max()
    return pd.DataFrame(cols).rename_axis("run_id").reset_index()


def available_keys(scores: pd.DataFrame) -> list[str]:
    """Score keys present, eval before val, final before best, in MEASURES order."""
    keys = [c for c in scores.columns if c.count(":") == 2]
    order = {"eval": 0, "val": 1, "final": 0, "best": 1}
    return sorted(keys, key=lambda c: (order.get(c.split(":")[0], 2), order.get(c.split(":")[2], 2),
                                       MEASURES.index(c.split(":")[1])))


def primary_key(scores: pd.DataFrame) -> str | None:
    """The headline score: greedy final from `aepo eval` if present, else from validation."""
    for key in (score_key("eval", "greedy", "final"), score_key("val", "greedy", "final")):
        if key in scores.columns and scores[key].notna().any():
            return key
    keys = available_keys(scores)
    return keys[0] if keys else None
