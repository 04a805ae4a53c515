"""`aepo plot`'s output: every figure (PNG + PDF), every table (Markdown + LaTeX), the claim
verdicts (claims.json) and a one-page report.md that embeds them.

Layout of OUT_DIR:
    report.md  claims.json  figures/<name>.{png,pdf}  tables/<name>.{md,tex}
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from aepo.errors import UserError
from aepo.rundir import make_dir
from analysis import tables as T
from analysis.claims import THRESHOLDS, Claim, judge_all
from analysis.load import Frames
from analysis.scores import available_keys, primary_key, score_label, table_score_label
from analysis.stats import IQM_MIN_RUNS
from analysis.summary import run_table
from paper_figs import render_all

STAT_NOTE = f"mean over seeds (IQM from {IQM_MIN_RUNS} seeds on) [95% bootstrap CI]"
MEASURE_FILE = {"greedy": "greedy", "pass@1": "pass1", "pass@k": "passk"}


def make_tables(frames: Frames, table: pd.DataFrame, score: str | None, out_dir: Path) -> dict[str, tuple[str, pd.DataFrame]]:
    """{name: (caption, cells)} of every table; each written as NAME.md and NAME.tex."""
    out: dict[str, tuple[str, pd.DataFrame]] = {}
    if score is not None:
        source, _, point = score.split(":")
        for key in available_keys(table):
            s, measure, p = key.split(":")
            if s != source or p != point:
                continue
            caption = (f"Accuracy (%) per benchmark: {table_score_label(table, key)}; "
                       f"{STAT_NOTE}; average over benchmarks; difference of means to GRPO in points.")
            out[f"table2_{MEASURE_FILE[measure]}"] = (caption, T.table2(frames.benchmarks, s, measure, p))
    out["ablation_table"] = ("AEPO against its ablations: final entropy (mean of the last 10% of steps), "
                             "final/initial entropy, headline accuracy (%) and its difference to AEPO "
                             f"(points); {STAT_NOTE}.", T.ablation_table(table, score))
    out["control_table"] = ("Control quality of every method with a target, one row per controller: "
                             "achieved entropy (second-half mean), mean |H−H*| over the second half "
                             "(and its worst seed), the step-to-step jitter that bounds it from below, time in band, settling step (first step after which "
                             "H stays in the band), overshoot, runs flagged saturated in the second half, final accuracy "
                             f"(%) and mean seconds per RL step; {STAT_NOTE}.", T.control_table(table))
    for name, (caption, df) in out.items():
        T.write_table(df, out_dir, name, caption)
    return out


def data_summary(all_frames: Frames, fin: Frames, score: str | None, source: str) -> list[str]:
    runs = all_frames.runs
    lines = [f"- Source: {source}."]
    excluded = runs[~runs["run_id"].isin(fin.runs["run_id"])]
    lines.append(f"- Runs: {len(runs)}, of which {len(fin.runs)} finished and analysed"
                 + (f"; excluded: {', '.join(f'{r.run_id} ({r.excluded or r.status})' for r in excluded.itertuples())}."
                    if len(excluded) else "."))
    per = fin.runs.groupby("condition").agg(runs=("run_id", "count"), starts=("start", "nunique"),
                                            seeds=("seed", "nunique"))
    if (per["starts"] > 1).any():
        lines.append("- Runs per condition (starts x seeds): " + ", ".join(
            f"{c} {r.runs} ({r.starts} x {r.seeds})" for c, r in per.iterrows()) + ".")
    else:
        lines.append("- Seeds per condition: " + ", ".join(f"{c} {r.seeds}" for c, r in per.iterrows()) + ".")
    machines = fin.runs["machine"].value_counts()  # analysis.load.run_row labels every run
    lines.append("- Machines: " + "; ".join(f"{m} ({n} runs)" for m, n in machines.items()) + "."
                 + (" Runs on different machine types round differently and train to different digits:"
                    " compare conditions within one." if len(machines.drop("not recorded", errors="ignore")) > 1 else ""))
    budgets = sorted(fin.runs["steps"].unique())
    lines.append(f"- Training budget: {', '.join(map(str, budgets))} steps per run.")
    if score:
        lines.append(f"- Headline score: {score_label(score)}.")
    return lines


def render_report(claims: list[Claim], figures: Mapping[str, list[Path]], tabs: Mapping[str, tuple[str, pd.DataFrame]],
                  summary: list[str], th: Mapping[str, Any], out_dir: Path) -> str:
    lines = ["# AEPO: measured claims", "", *summary, "",
             "## Claims (arXiv 2510.08141, spec section 6)", "",
             "Judged by the rules in `analysis/claims.py` (thresholds below), not by hand.", "",
             ]
    starts = list(claims[0].per_start) if claims and claims[0].per_start else []
    head = ["claim", "statement", "verdict", *(f"start {s}" for s in starts), "evidence"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in claims:
        cells = [c.id, c.statement, f"**{c.verdict}**", *(c.per_start[s] for s in starts), c.evidence.replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if starts:
        lines += [f"Runs from {len(starts)} starts ({', '.join(starts)}): each claim is judged pooled (intervals "
                  "resample the starts, then the seeds within each) and on each start's runs alone; a pooled "
                  "verdict stands only when every start gives it, else the verdict is 'depends on the start'.", ""]
    for c in claims:
        if c.details:
            lines += [f"{c.id}, every score and start (reported separately):", ""]
            lines += [f"- {d}" for d in c.details] + [""]
    lines += ["How verdicts are decided (95% percentile bootstrap CIs over seeds; thresholds: "
              + ", ".join(f"`{k}` = {v}" for k, v in th.items()) + "):", ""]
    lines += [f"- {c.id}: {c.rule}" for c in claims] + ["", "## Figures", ""]
    for name, paths in figures.items():
        png = next(p for p in paths if p.suffix == ".png")
        lines += [f"![{name}]({png.relative_to(out_dir).as_posix()})", ""]
    lines += ["## Tables", ""]
    for name, (caption, df) in tabs.items():
        lines += [f"**{name}**: {caption}", "", T.to_markdown(df)]
    return "\n".join(lines)


def make_report(all_frames: Frames, out_dir: str | Path, source: str,
                th: Mapping[str, Any] = THRESHOLDS) -> dict[str, list[Path]]:
    """Write everything `aepo plot` promises; returns {'figures'|'tables'|'report': [paths]}."""
    out = make_dir(Path(out_dir))
    fin = all_frames.finished()
    if fin.runs.empty:
        runs = all_frames.runs
        left_out = [f"{r.run_id} ({r.excluded})" for r in runs[runs["excluded"] != ""].head(3).itertuples()]
        raise UserError(f"no finished run to analyse (the runs' statuses: {', '.join(sorted(set(runs['status'])))}"
                        + (f"; left out: {', '.join(left_out)}" if left_out else "") + ")")
    table = run_table(fin, th)
    score = primary_key(table)
    figures = render_all(fin.steps, table, out / "figures")
    tabs = make_tables(fin, table, score, out / "tables")
    claims = judge_all(table, score, th)
    summary = data_summary(all_frames, fin, score, source)
    (out / "claims.json").write_text(json.dumps({"headline_score": score, "thresholds": dict(th),
                                                 "claims": [asdict(c) for c in claims]}, indent=2))
    (out / "report.md").write_text(render_report(claims, figures, tabs, summary, th, out))
    return {"figures": [p for ps in figures.values() for p in ps],
            "tables": sorted((out / "tables").iterdir()),
            "report": [out / "report.md", out / "claims.json"]}
