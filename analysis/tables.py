"""The paper's tables from the run table, as frames of formatted cells, in Markdown and LaTeX.

- `table2`: methods x benchmarks (paper Table 2 layout), the average over benchmarks, and the
  difference of that average to GRPO; accuracy in %, mean over seeds [95% bootstrap CI].
- `ablation_table`: AEPO against its two ablations at each ablation target: final entropy,
  final/initial entropy, headline score and its difference to AEPO.
- `control_table`: control quality of the AEPO family at each target (analysis.control).
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

from analysis.load import METHOD_ORDER
from analysis.stats import difference_ci, interval

TABLE2_METHODS = ("grpo", "entropy_reg", "entropy_adv", "aepo")
NAMES = {"grpo": "GRPO", "entropy_reg": "Entropy-Reg", "entropy_adv": "Entropy-Adv", "aepo": "AEPO",
         "aepo_no_temp": "AEPO w/o temperature", "aepo_with_negatives": "AEPO with negatives"}


def cell(p: float, lo: float, hi: float, scale: float = 100.0, digits: int = 1, signed: bool = False) -> str:
    """'57.9 [56.1, 59.4]'; the bare value without an interval; '–' for no value."""
    if p is None or math.isnan(p):
        return "–"
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    if math.isnan(lo):
        return f.format(p * scale)
    return f"{f.format(p * scale)} [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}]"


def row_name(method: str, target: float) -> str:
    name = NAMES.get(method, method)
    return name if math.isnan(target) else f"{name} H*={target:.2f}"


def conditions(table: pd.DataFrame, methods: Sequence[str]) -> list[tuple[str, float, pd.DataFrame]]:
    out = []
    for m in methods:
        rows = table[table["method"] == m]
        if rows.empty:
            continue
        if rows["entropy_target"].isna().all():
            out.append((m, math.nan, rows))
        else:
            out += [(m, float(t), g) for t, g in sorted(rows.groupby("entropy_target"))]
    return out


def table2(benchmarks: pd.DataFrame, source: str, measure: str, point: str = "final") -> pd.DataFrame:
    """Methods x benchmarks of one score (benchmarks: the tidy benchmarks frame, finished runs)."""
    b = benchmarks[(benchmarks["source"] == source) & (benchmarks["point"] == point)]
    wide = b.pivot_table(index="run_id", columns="benchmark", values=measure, aggfunc="mean")
    wide.columns = [str(c) for c in wide.columns]
    ids = b[["run_id", "method", "entropy_target"]].drop_duplicates("run_id")
    wide = ids.merge(wide.reset_index(), on="run_id")
    benches = [c for c in wide.columns if c not in ("run_id", "method", "entropy_target")]
    wide["average"] = wide[benches].mean(axis=1, skipna=False)
    grpo_avg = wide.loc[wide["method"] == "grpo", "average"].to_numpy(dtype=float)
    rows = []
    for m, t, g in conditions(wide, TABLE2_METHODS):
        row = {"method": row_name(m, t), "seeds": len(g)}
        for c in [*benches, "average"]:
            row[c] = cell(*interval(g[c]))
        row["Δ GRPO (pts)"] = ("–" if m == "grpo" or grpo_avg.size == 0 else
                               cell(*difference_ci(g["average"], grpo_avg), signed=True))
        rows.append(row)
    return pd.DataFrame(rows)


def ablation_table(table: pd.DataFrame, score: str | None) -> pd.DataFrame:
    """AEPO against its ablations, at each target where an ablation ran."""
    abl = table[table["method"].isin(("aepo_no_temp", "aepo_with_negatives"))]
    rows = []
    for t in sorted(abl["entropy_target"].dropna().unique()):
        at_t = table[np.isclose(table["entropy_target"].fillna(-1), t)]
        ref = at_t.loc[at_t["method"] == "aepo", score].to_numpy(dtype=float) if score else np.array([])
        for m, _, g in conditions(at_t, ("aepo", "aepo_no_temp", "aepo_with_negatives")):
            s = g[score].to_numpy(dtype=float) if score else np.array([])
            rows.append({"method": row_name(m, t), "seeds": len(g),
                         "final H (nats)": cell(*interval(g["h_final"]), scale=1, digits=2),
                         "final/initial H": cell(*interval(g["h_ratio"]), scale=1, digits=2),
                         "accuracy (%)": cell(*interval(s)),
                         "Δ AEPO (pts)": "–" if m == "aepo" or ref.size == 0 else
                         cell(*difference_ci(s, ref), signed=True)})
    return pd.DataFrame(rows)


def control_table(table: pd.DataFrame) -> pd.DataFrame:
    """Control quality of every AEPO-family condition (runs with a target)."""
    rows = []
    for m, t, g in conditions(table, [m for m in METHOD_ORDER if m.startswith("aepo")]):
        settled = g["settling_step"].dropna()
        rows.append({"method": row_name(m, t), "seeds": len(g), "band (nats)": f"±{g['band'].iloc[0]:.2f}",
                     "achieved H (nats)": cell(*interval(g["h_achieved"]), scale=1, digits=2),
                     "mean |H−H*|, 2nd half": cell(*interval(g["mae_2nd_half"]), scale=1, digits=3),
                     "in band (%)": cell(*interval(g["in_band"]), digits=0),
                     "in band, 2nd half (%)": cell(*interval(g["in_band_2nd_half"]), digits=0),
                     "settling step (median)": f"{settled.median():.0f} ({len(settled)}/{len(g)} settled)"
                     if len(settled) else f"never (0/{len(g)})",
                     "overshoot (nats)": cell(*interval(g["overshoot"]), scale=1, digits=3)})
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
