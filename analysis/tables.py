"""The paper's tables from the run table, as frames of formatted cells, in Markdown and LaTeX.

- `table2`: methods x benchmarks (paper Table 2 layout), the average over benchmarks, and the
  difference of that average to GRPO; accuracy in %, mean over seeds [95% bootstrap CI].
- `ablation_table`: AEPO against its two ablations at each ablation target: final entropy,
  final/initial entropy, headline score and its difference to AEPO.
- `control_table`: control quality of every method with a target (the AEPO family, one row per
  controller, and entropy_adaptive) at each target (analysis.control), with the final scores
  and the step time.
A cell is the mean over seeds (the IQM from IQM_MIN_RUNS seeds on) [95% bootstrap CI]; a cell
with one seed shows the value alone; the `seeds` column says how many runs each row has.
Differences (Δ columns) are differences of means.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from analysis.load import ABLATIONS, AEPO_FAMILY, METHOD_NAMES, METHOD_ORDER, TARGETED, recipe_of
from analysis.stats import ci, difference_ci, starts_of

TABLE2_METHODS = ("grpo", "entropy_reg", "entropy_adv", "aepo")
CONTROLLER_NAMES = {"bang_bang": "bang-bang (paper)"}


def cell(p: float, lo: float, hi: float, scale: float = 100.0, digits: int = 1, signed: bool = False) -> str:
    """'57.9 [56.1, 59.4]'; the bare value without an interval; '–' for no value."""
    if p is None or math.isnan(p):
        return "–"
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    if math.isnan(lo):
        return f.format(p * scale)
    return f"{f.format(p * scale)} [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}]"


def display_label(method: str, target: float, variant: str = "") -> str:
    """'AEPO H*=0.50', with the variant where a sweep varies more than the target ('AEPO H*=0.50 a=1.0')."""
    name = METHOD_NAMES.get(method, method)
    name = name if math.isnan(target) else f"{name} H*={target:.2f}"
    return f"{name} {variant}".strip()


def conditions(table: pd.DataFrame, methods: Sequence[str]) -> list[tuple[str, float, str, pd.DataFrame]]:
    """(method, target, variant, runs) of every condition, by method, variant, target: the runs of
    one condition differ only in their seed."""
    out = []
    for m in methods:
        rows = table[table["method"] == m]
        variant = rows["variant"] if "variant" in rows else pd.Series("", index=rows.index)
        for v, vrows in sorted(rows.groupby(variant.fillna(""), sort=True)):
            if vrows["entropy_target"].isna().all():
                out.append((m, math.nan, v, vrows))
            else:
                out += [(m, float(t), v, g) for t, g in sorted(vrows.groupby("entropy_target"))]
    return out


def grpo_reference(grpo: pd.DataFrame, condition: pd.DataFrame) -> pd.DataFrame:
    """The GRPO runs a condition is compared with: those from its own lab recipes where GRPO ran
    from them (a difference across recipes, say tiny against tiny-weak, measures the starts, not
    the methods); all GRPO runs otherwise."""
    recipes = set(condition["start"].map(recipe_of))
    same = grpo[grpo["start"].map(recipe_of).isin(recipes)]
    return same if not same.empty else grpo


def table2(benchmarks: pd.DataFrame, source: str, measure: str, point: str = "final") -> pd.DataFrame:
    """Methods x benchmarks of one score (benchmarks: the tidy benchmarks frame, finished runs)."""
    b = benchmarks[(benchmarks["source"] == source) & (benchmarks["point"] == point)]
    wide = b.pivot_table(index="run_id", columns="benchmark", values=measure, aggfunc="mean")
    wide.columns = [str(c) for c in wide.columns]
    ids = b[["run_id", "method", "entropy_target", "variant", "start"]].drop_duplicates("run_id")
    wide = ids.merge(wide.reset_index(), on="run_id")
    benches = [c for c in wide.columns if c not in ("run_id", "method", "entropy_target", "variant", "start")]
    wide["average"] = wide[benches].mean(axis=1, skipna=False)
    grpo = wide[wide["method"] == "grpo"]
    rows = []
    for m, t, v, g in conditions(wide, TABLE2_METHODS):
        row = {"method": display_label(m, t, v), "seeds": len(g)}
        for c in [*benches, "average"]:
            row[c] = cell(*ci(g, c))
        ref = grpo_reference(grpo, g)
        row["Δ GRPO (pts)"] = ("–" if m == "grpo" or ref.empty else
                               cell(*difference_ci(g["average"], ref["average"].to_numpy(dtype=float),
                                                   groups_a=starts_of(g), groups_b=starts_of(ref)), signed=True))
        rows.append(row)
    return pd.DataFrame(rows)


def ablation_table(table: pd.DataFrame, score: str | None) -> pd.DataFrame:
    """AEPO against its ablations, at each target where an ablation ran."""
    abl = table[table["method"].isin(ABLATIONS)]
    rows = []
    for t in sorted(abl["entropy_target"].dropna().unique()):
        at_t = table[np.isclose(table["entropy_target"].fillna(-1), t)]
        aepo_t = at_t[at_t["method"] == "aepo"]
        # the reference is AEPO's one condition at this target (none when AEPO ran several variants)
        one = score is not None and aepo_t["variant"].nunique() == 1
        ref = aepo_t[score].to_numpy(dtype=float) if one else np.array([])
        ref_starts = starts_of(aepo_t) if one else None
        for m, _, v, g in conditions(at_t, AEPO_FAMILY):
            s = g[score].to_numpy(dtype=float) if score else np.array([])
            s_ci = ci(g, score) if score else (np.nan, np.nan, np.nan)
            rows.append({"method": display_label(m, t, v), "seeds": len(g),
                         "final H (nats)": cell(*ci(g, "h_final"), scale=1, digits=2),
                         "final/initial H": cell(*ci(g, "h_ratio"), scale=1, digits=2),
                         "accuracy (%)": cell(*s_ci),
                         "Δ AEPO (pts)": "–" if m == "aepo" or ref.size == 0 else
                         cell(*difference_ci(s, ref, groups_a=starts_of(g), groups_b=ref_starts), signed=True)})
    return pd.DataFrame(rows)


def control_scores(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(column header, score key) of the final greedy, sampled pass@1 and pass@k scores, from
    `aepo eval` when the table has it, else from in-training validation."""
    source = "eval" if any(c.startswith("eval:") for c in table.columns) else "val"
    k = table.get(f"k:{source}")
    k_txt = f"{int(k.max())}" if k is not None and k.notna().any() else "k"
    return [(f"{h} (%)", f"{source}:{m}:final") for h, m in
            (("greedy", "greedy"), ("sampled pass@1", "pass@1"), (f"pass@{k_txt}", "pass@k"))]


def control_table(table: pd.DataFrame) -> pd.DataFrame:
    """Control quality of every condition with a target (method, target and variant, the
    controller among the variant's settings where runs differ in it).

    The worst seed is the largest per-run mean |H−H*|; `saturated` counts the runs whose
    controller flagged its bound in the second half."""
    rows = []
    order = [m for m in METHOD_ORDER if m.startswith("aepo")] + [m for m in TARGETED if m not in METHOD_ORDER]
    ctrl = table["controller"] if "controller" in table else pd.Series(None, index=table.index, dtype=object)
    for m, t, v, h in conditions(table, order):
        c = ", ".join(CONTROLLER_NAMES.get(x, x) for x in sorted(ctrl[h.index].dropna().unique()))
        settled = h["settling_step"].dropna()
        sat = h["saturated"].dropna()
        row = {"method": display_label(m, t, v), "controller": c or "–",
               "seeds": len(h), "band (nats)": f"±{h['band'].iloc[0]:.2f}",
               "achieved H (nats)": cell(*ci(h, "h_achieved"), scale=1, digits=2),
               "mean |H−H*|, 2nd half": cell(*ci(h, "mae_2nd_half"), scale=1, digits=3),
               "worst seed": cell(h["mae_2nd_half"].max(), math.nan, math.nan, scale=1, digits=3),
               "IAE (nat·steps)": cell(*ci(h, "iae"), scale=1, digits=1),
               "jitter floor (nats)": cell(*ci(h, "jitter_2nd_half"), scale=1, digits=3),
               "in band (%)": cell(*ci(h, "in_band"), digits=0),
               "in band, 2nd half (%)": cell(*ci(h, "in_band_2nd_half"), digits=0),
               "settling step (median)": f"{settled.median():.0f} ({len(settled)}/{len(h)} settled)"
               if len(settled) else f"never (0/{len(h)})",
               "overshoot (nats)": cell(*ci(h, "overshoot"), scale=1, digits=3),
               "saturated": f"{int(sat.sum())}/{len(sat)}" if len(sat) else "–"}
        for header, key in control_scores(table):
            row[header] = cell(*ci(h, key)) if key in h else "–"
        row["step time (s)"] = cell(*ci(h, "step_time_s"), scale=1, digits=3)
        rows.append(row)
    return pd.DataFrame(rows)


# ---- rendering ----------------------------------------------------------------------------
def to_markdown(df: pd.DataFrame) -> str:
    if df.empty:
        return "_(no data)_\n"
    cols = [str(c).replace("|", "\\|") for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(cols))) + "|"]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def latex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("Δ", r"$\Delta$"), ("±", r"$\pm$"), ("−", "-"), ("–", "--"), ("|", r"$|$")):
        s = s.replace(a, b)
    return s


def to_latex(df: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs table (needs \\usepackage{booktabs})."""
    cols = [latex_escape(str(c)) for c in df.columns]
    body = [" & ".join(latex_escape(str(v)) for v in r) + r" \\" for r in df.itertuples(index=False)]
    return "\n".join([r"\begin{table}[t]", r"\centering", r"\small",
                      r"\begin{tabular}{l" + "r" * (len(cols) - 1) + "}", r"\toprule",
                      " & ".join(cols) + r" \\", r"\midrule", *body, r"\bottomrule", r"\end{tabular}",
                      rf"\caption{{{latex_escape(caption)}}}", rf"\label{{{label}}}", r"\end{table}", ""])


def write_table(df: pd.DataFrame, out_dir: str | Path, name: str, caption: str) -> list[Path]:
    """NAME.md and NAME.tex under out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, tex = out / f"{name}.md", out / f"{name}.tex"
    md.write_text(f"{caption}\n\n{to_markdown(df)}")
    tex.write_text(to_latex(df, caption, f"tab:{name}"))
    return [md, tex]
