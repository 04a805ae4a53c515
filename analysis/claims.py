"""The paper's claims C1-C8 (arXiv 2510.08141; spec section 6), judged by rules in code.

Every threshold a verdict depends on is in THRESHOLDS, right below. A verdict is one of:
- "holds": the rule's interval clears its threshold;
- "does not hold": the interval clears the threshold the other way;
- "not measurable with this data": a condition is missing, has fewer than `min_seeds` runs,
  runs have unequal budgets, or the interval straddles the threshold (seed noise too large to
  decide: more seeds would);
- "mixed": a sweep varied a setting besides the target and seed (a variant, analysis.load), the
  claim was judged in each variant separately, and the variants disagree (each one's verdict is
  in the evidence). Runs of different variants are never pooled as if they were seeds;
- "depends on the start": the runs began from several starts (pretrained models), the claim was
  judged on each start's runs alone and on all of them (intervals hierarchical: resample the
  starts, then the seeds within), and the per-start verdicts disagree with each other or with
  the pooled one: a pooled verdict stands only when every start gives it ("holds on k of n
  starts" says how far it went).
Intervals are 95% percentile bootstraps over runs (seeds); comparisons that pick the best of m
conditions widen their intervals by Bonferroni (level 1 - 0.05 / m).
C8 (a better target distribution pi* regularizes) is judged where AEPO ran with a teacher pi*
beside the paper's temperature pi* (sweeps/pistar.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from analysis.control import BAND_MIN, BAND_REL
from analysis.stats import LEVEL, best_location_ci, bootstrap_ci, difference_ci, starts_of

THRESHOLDS: dict[str, Any] = {
    "min_seeds": 3,  # runs per condition before any verdict (never one seed dressed as a result)
    "window": 0.1,  # fraction of records averaged into the initial / final entropy of a run
    "collapse_ratio": 0.5,  # collapse: final H <= 0.5 x initial H (whole CI below)
    "surge_ratio": 1.5,  # surge: peak H >= 1.5 x initial H (whole CI above)
    "min_targets": 3,  # C2 "any target" and C3 "rises, peaks, falls" need >= 3 AEPO targets
    "min_gap": 0.0,  # C3, C7: an accuracy gap counts when its CI lower bound exceeds this
    # C3: a rise (or fall) whose whole CI lies below this is none: the curve is flat there, so it
    # does not rise, peak and fall (an equivalence margin, in accuracy units: 0.02 = 2 points)
    "flat_margin": 0.02,
}

HOLDS, FAILS, UNKNOWN, MIXED = "holds", "does not hold", "not measurable with this data", "mixed"
ACROSS_STARTS = "depends on the start"

STATEMENTS = {
    "C1": "GRPO's entropy collapses.",
    "C2": "AEPO holds entropy near any target H.",
    "C3": "Performance against entropy is non-monotonic: it rises, peaks and falls.",
    "C4": "Without temperature adjustment (REINFORCE samples at T = 1) entropy collapses.",
    "C5": "With negatives kept (advantage instead of REINFORCE) entropy collapses.",
    "C6": "Entropy-Reg is unstable (entropy surges or collapses); Entropy-Adv still collapses.",
    "C7": "AEPO beats GRPO at a good target H.",
    "C8": "REINFORCE samples from a better distribution pi* (a teacher) improve on temperature-adjusted pi.",
}


@dataclass
class Claim:
    id: str
    statement: str
    rule: str
    verdict: str
    evidence: str
    details: list[str] = field(default_factory=list)  # further evidence (C3: every score)
    per_start: dict[str, str] = field(default_factory=dict)  # verdict on each start's runs alone


# ---- helpers ------------------------------------------------------------------------------
def combine(verdicts: list[str]) -> str:
    """All parts must hold: any failure fails, else any unknown is unknown."""
    if not verdicts:
        return UNKNOWN
    if FAILS in verdicts:
        return FAILS
    return UNKNOWN if UNKNOWN in verdicts else HOLDS


def threshold_verdict(lo: float, hi: float, threshold: float, below: bool) -> str:
    """Holds when the whole interval is on the claimed side of the threshold."""
    if np.isnan(lo) or np.isnan(hi):
        return UNKNOWN
    if below:
        return HOLDS if hi <= threshold else FAILS if lo > threshold else UNKNOWN
    return HOLDS if lo >= threshold else FAILS if hi < threshold else UNKNOWN


def fmt_ci(p: float, lo: float, hi: float, scale: float = 1.0, digits: int = 2) -> str:
    if np.isnan(p):
        return "n/a"
    if np.isnan(lo):
        return f"{p * scale:.{digits}f} (no CI)"
    return f"{p * scale:.{digits}f} [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}]"


def _enough(values: np.ndarray, th: Mapping[str, Any]) -> bool:
    return values.size >= th["min_seeds"]


def ratio_check(table: pd.DataFrame, label: str, column: str, threshold: float, below: bool,
                th: Mapping[str, Any]) -> tuple[str, str]:
    """(verdict, evidence) of one condition's per-run ratio against a threshold."""
    v = table[column].dropna().to_numpy(dtype=float)
    if v.size == 0:
        return UNKNOWN, f"{label}: no runs"
    p, lo, hi = bootstrap_ci(table[column], groups=starts_of(table))
    what = {"h_ratio": "final/initial H", "h_peak_ratio": "peak/initial H"}[column]
    ev = (f"{label}: {what} = {fmt_ci(p, lo, hi)} over {v.size} seeds "
          f"(H {table['h_initial'].mean():.2f} -> {table['h_final'].mean():.2f} nats)")
    if not _enough(v, th):
        return UNKNOWN, ev + f"; fewer than {th['min_seeds']} seeds"
    return threshold_verdict(lo, hi, threshold, below), ev


def collapse_check(table: pd.DataFrame, label: str, th: Mapping[str, Any]) -> tuple[str, str]:
    return ratio_check(table, label, "h_ratio", th["collapse_ratio"], True, th)


def method_rows(table: pd.DataFrame, method: str) -> pd.DataFrame:
    return table[table["method"] == method]


def variant_rows(table: pd.DataFrame, method: str) -> dict[str, pd.DataFrame]:
    """{variant: runs} of one method (one entry, "", when the sweep varied nothing but target and seed)."""
    rows = method_rows(table, method)
    variant = rows["variant"].fillna("") if "variant" in rows else pd.Series("", index=rows.index)
    return {str(v): g for v, g in rows.groupby(variant, sort=True)}


def by_target(rows: pd.DataFrame) -> dict[float, pd.DataFrame]:
    """{target: runs} of the runs of one method and variant."""
    return {float(t): g for t, g in rows.groupby("entropy_target")}


def agree(parts: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """One (verdict, evidence) from per-variant ones: the common verdict, or MIXED."""
    if not parts:
        return UNKNOWN, "no runs"
    if len(parts) == 1:
        return next(iter(parts.values()))
    verdicts = {v for v, _ in parts.values()}
    verdict = verdicts.pop() if len(verdicts) == 1 else MIXED
    return verdict, "; ".join(f"[{name}] {v}: {ev}" for name, (v, ev) in parts.items())


def budget_note(table: pd.DataFrame) -> tuple[bool, str]:
    """(equal, 'budget: N steps per run'): compared runs must share one training budget."""
    steps = sorted(table["steps"].dropna().astype(int).unique())
    if len(steps) == 1:
        return True, f"budget {steps[0]} steps per run"
    return False, f"unequal budgets {steps} steps: not compared at equal convergence"


# ---- the rules ----------------------------------------------------------------------------
def judge_c1(table: pd.DataFrame, score: str | None, th: Mapping[str, Any]) -> Claim:
    rule = f"GRPO's final/initial entropy CI lies below {th['collapse_ratio']}."
    v, ev = agree({name: collapse_check(g, "GRPO", th) for name, g in variant_rows(table, "grpo").items()})
    return Claim("C1", STATEMENTS["C1"], rule, v, ev)


def judge_c2(table: pd.DataFrame, score: str | None, th: Mapping[str, Any]) -> Claim:
    rule = (f"At each of >= {th['min_targets']} AEPO targets, the CI of mean |H - H*| over the second half "
            f"lies within the band (analysis.control.band_width: max({BAND_REL:.0%} of H*, {BAND_MIN} nats)).")
    v, ev = agree({name: c2_variant(rows, th) for name, rows in variant_rows(table, "aepo").items()})
    return Claim("C2", STATEMENTS["C2"], rule, v, ev if ev != "no runs" else "no AEPO runs")


def c2_variant(rows: pd.DataFrame, th: Mapping[str, Any]) -> tuple[str, str]:
    groups = by_target(rows)
    verdicts, parts = [], []
    for t, g in groups.items():
        v = g["mae_2nd_half"].dropna().to_numpy(dtype=float)
        p, lo, hi = bootstrap_ci(g["mae_2nd_half"], groups=starts_of(g))
        band = float(g["band"].iloc[0])
        verdict = threshold_verdict(lo, hi, band, below=True) if _enough(v, th) else UNKNOWN
        verdicts.append(verdict)
        parts.append(f"H*={t:.2f}: error {fmt_ci(p, lo, hi)} vs band {band:.2f}, "
                     f"{g['in_band_2nd_half'].mean():.0%} of late steps in band ({v.size} seeds)")
    verdict = combine(verdicts)
    if len(groups) < th["min_targets"] and verdict != FAILS:
        verdict = UNKNOWN
        parts.append(f"only {len(groups)} target(s), need {th['min_targets']}")
    return verdict, "; ".join(parts)


def target_scores(rows: pd.DataFrame, score: str) -> list[tuple[float, np.ndarray, float, np.ndarray | None]]:
    """[(target, per-run scores, mean achieved H, the runs' starts)] of one method and variant,
    by increasing target (NaN scores left out)."""
    out = []
    for t, g in sorted(by_target(rows).items()):
        g = g[g[score].notna()]
        out.append((t, g[score].to_numpy(dtype=float), float(g["h_achieved"].mean()), starts_of(g)))
    return out


def peak_verdict(groups: list[tuple[float, np.ndarray, float, np.ndarray | None]], th: Mapping[str, Any]) -> tuple[str, str]:
    """Rises-peaks-falls test on per-target scores: the best target is interior and beats both
    end targets beyond seed noise (Bonferroni over the m - 1 comparisons with the best)."""
    m = len(groups)
    means = [v.mean() if v.size else np.nan for _, v, _, _ in groups]
    desc = ", ".join(f"H*={t:.2f} (H={h:.2f}): {fmt_ci(*bootstrap_ci(v, groups=st), scale=100, digits=1)}"
                     for (t, v, h, st) in groups)
    if m >= 2 and all(v.size for _, v, _, _ in groups):  # where the best entropy lies, with its interval
        loc = best_location_ci([h for _, _, h, _ in groups], [v for _, v, _, _ in groups], [st for *_, st in groups])
        if not np.isnan(loc[0]):
            desc += f"; best at achieved H {fmt_ci(*loc)} nats (bootstrap over seeds)"
    if m < th["min_targets"]:
        return UNKNOWN, f"{desc}; only {m} target(s), need {th['min_targets']}"
    if min(v.size for _, v, _, _ in groups) < th["min_seeds"]:
        return UNKNOWN, f"{desc}; fewer than {th['min_seeds']} seeds at some target"
    scores = np.concatenate([v for _, v, _, _ in groups])
    edge = "0" if np.all(scores <= 0) else "100" if np.all(scores >= 1) else None
    if edge:  # a floor or ceiling shows no curve, flat or not
        return UNKNOWN, f"{desc}; every run scores {edge} %: no curve to judge"
    level = 1 - (1 - LEVEL) / (m - 1)
    best = int(np.nanargmax(means))

    def gap(a: int, b: int) -> tuple[float, float, float]:
        return difference_ci(groups[a][1], groups[b][1], level, groups_a=groups[a][3], groups_b=groups[b][3])

    if 0 < best < m - 1:
        gaps = [gap(best, e) for e in (0, m - 1)]
        gap_txt = " and ".join(f"{fmt_ci(*g, scale=100, digits=1)} pts over H*={groups[e][0]:.2f}"
                               for g, e in zip(gaps, (0, m - 1)))
        if all(g[1] > th["min_gap"] for g in gaps):
            return HOLDS, f"{desc}; peak at H*={groups[best][0]:.2f} beats both ends: {gap_txt}"
        flat = [groups[e][0] for g, e in zip(gaps, (0, m - 1)) if g[2] < th["flat_margin"]]
        if flat:
            return FAILS, (f"{desc}; no peak: the interior best H*={groups[best][0]:.2f} is within "
                           f"{100 * th['flat_margin']:.0f} pts of H*={flat[0]:.2f} (whole CI below the margin): {gap_txt}")
        return UNKNOWN, f"{desc}; interior best H*={groups[best][0]:.2f} but gaps within seed noise: {gap_txt}"
    other = m - 1 - best
    g = gap(best, other)
    txt = f"best at the end H*={groups[best][0]:.2f}, {fmt_ci(*g, scale=100, digits=1)} pts over H*={groups[other][0]:.2f}"
    if g[1] > th["min_gap"]:
        return FAILS, f"{desc}; monotonic: {txt}"
    if g[2] < th["flat_margin"]:
        return FAILS, f"{desc}; flat: the ends are within {100 * th['flat_margin']:.0f} pts ({txt})"
    return UNKNOWN, f"{desc}; no peak beyond seed noise ({txt})"


def judge_c3(table: pd.DataFrame, score: str | None, th: Mapping[str, Any]) -> Claim:
    rule = (f"Over >= {th['min_targets']} AEPO targets, the best mean score is at an interior target and "
            f"its gap to both end targets has a (Bonferroni) CI above {th['min_gap']}; it does not hold when the "
            f"best is an end target ahead of the other end, or lies within {100 * th['flat_margin']:.0f} points of "
            f"an end (the gap's whole CI below the margin: no rise or no fall); each score is judged "
            f"separately, the verdict follows the headline score.")
    from analysis.scores import available_keys, table_score_label

    aepo = method_rows(table, "aepo")
    if score is None or aepo.empty:
        return Claim("C3", STATEMENTS["C3"], rule, UNKNOWN, "no AEPO runs with scores")
    equal, budget = budget_note(aepo)
    details, headline = [], {}
    for name, rows in variant_rows(table, "aepo").items():
        prefix = f"[{name}] " if name else ""
        for key in available_keys(table):
            if rows[key].notna().sum() == 0:
                continue
            v, ev = peak_verdict(target_scores(rows, key), th)
            label = table_score_label(table, key)
            details.append(f"{prefix}{label}: {v}. {ev}")
            if key == score:
                headline[name] = (v, f"{label}: {ev}")
    verdict, evidence = agree(headline) if headline else (UNKNOWN, "no headline score")
    if not equal:
        verdict = UNKNOWN
    return Claim("C3", STATEMENTS["C3"], rule, verdict, f"{budget}; {evidence}", details)


def per_target_collapse(table: pd.DataFrame, method: str, label: str, th: Mapping[str, Any]) -> tuple[str, str]:
    parts = {}
    for name, rows in variant_rows(table, method).items():
        checks = [collapse_check(g, f"{label} H*={t:.2f}", th) for t, g in sorted(by_target(rows).items())]
        parts[name] = (combine([v for v, _ in checks]), "; ".join(e for _, e in checks))
    return agree(parts) if parts else (UNKNOWN, f"no {label} runs")


def judge_c4(table: pd.DataFrame, score: str | None, th: Mapping[str, Any]) -> Claim:
    rule = f"At every target, AEPO-without-temperature's final/initial entropy CI lies below {th['collapse_ratio']}."
    v, ev = per_target_collapse(table, "aepo_no_temp", "no-temperature ablation", th)
    return Claim("C4", STATEMENTS["C4"], rule, v, ev)


def judge_c5(table: pd.DataFrame, score: str | None, th: Mapping[str, Any]) -> Claim:
    rule = f"At every target, AEPO-with-negatives' final/initial entropy CI lies below {th['collapse_ratio']}."
    v, ev = per_target_collapse(table, "aepo_with_negatives", "with-negatives ablation", th)
    return Claim("C5", STATEMENTS["C5"], rule, v, ev)


def judge_c6(table: pd.DataFrame, score: str | None, th: Mapping[str, Any]) -> Claim:
    rule = (f"Entropy-Reg's peak/initial H CI lies above {th['surge_ratio']} or its final/initial CI below "
            f"{th['collapse_ratio']}; and Entropy-Adv's final/initial CI lies below {th['collapse_ratio']}.")
    reg_parts = {}
    for name, reg in variant_rows(table, "entropy_reg").items():
        surge_v, surge_ev = ratio_check(reg, "Entropy-Reg", "h_peak_ratio", th["surge_ratio"], False, th)
        coll_v, coll_ev = collapse_check(reg, "Entropy-Reg", th)
        unstable = HOLDS if HOLDS in (surge_v, coll_v) else FAILS if surge_v == coll_v == FAILS else UNKNOWN
        reg_parts[name] = (unstable, f"{surge_ev}; {coll_ev}")
    unstable, reg_ev = agree(reg_parts) if reg_parts else (UNKNOWN, "no Entropy-Reg runs")
    adv_v, adv_ev = agree({name: collapse_check(g, "Entropy-Adv", th)
                           for name, g in variant_rows(table, "entropy_adv").items()})
    if adv_ev == "no runs":
        adv_ev = "Entropy-Adv: no runs"
    return Claim("C6", STATEMENTS["C6"], rule, combine([unstable, adv_v]), f"{reg_ev}; {adv_ev}")


def judge_c7(table: pd.DataFrame, score: str | None, th: Mapping[str, Any]) -> Claim:
    rule = (f"At some AEPO target, the (Bonferroni over targets) CI of AEPO minus GRPO on the headline "
            f"score lies above {th['min_gap']}; it does not hold when GRPO is ahead at every target.")
    grpo, aepo = variant_rows(table, "grpo"), variant_rows(table, "aepo")
    if score is None or len(grpo) != 1 or not aepo:
        why = "GRPO ran in several variants: no single reference" if len(grpo) > 1 else \
            "needs GRPO and AEPO runs with scores"
        return Claim("C7", STATEMENTS["C7"], rule, UNKNOWN, why)
    g_rows = next(iter(grpo.values()))
    v, ev = agree({name: c7_variant(g_rows, rows, score, th) for name, rows in aepo.items()})
    return Claim("C7", STATEMENTS["C7"], rule, v, ev)


def c7_variant(grpo: pd.DataFrame, aepo: pd.DataFrame, score: str, th: Mapping[str, Any]) -> tuple[str, str]:
    groups = by_target(aepo)
    grpo = grpo[grpo[score].notna()]
    g = grpo[score].to_numpy(dtype=float)
    level = 1 - (1 - LEVEL) / len(groups)
    equal, budget = budget_note(pd.concat([grpo, *groups.values()]))
    verdicts, parts = [], [f"{budget}; GRPO {fmt_ci(*bootstrap_ci(g, groups=starts_of(grpo)), scale=100, digits=1)}"]
    for t, rows in sorted(groups.items()):
        rows = rows[rows[score].notna()]
        a = rows[score].to_numpy(dtype=float)
        d = difference_ci(a, g, level, groups_a=starts_of(rows), groups_b=starts_of(grpo))
        if min(a.size, g.size) < th["min_seeds"]:
            verdicts.append(UNKNOWN)
        else:
            verdicts.append(HOLDS if d[1] > th["min_gap"] else FAILS if d[2] < 0 else UNKNOWN)
        parts.append(f"AEPO H*={t:.2f} minus GRPO: {fmt_ci(*d, scale=100, digits=1)} pts")
    verdict = HOLDS if HOLDS in verdicts else FAILS if verdicts and all(v == FAILS for v in verdicts) else UNKNOWN
    return (verdict if equal else UNKNOWN), "; ".join(parts)


def judge_c8(table: pd.DataFrame, score: str | None, th: Mapping[str, Any]) -> Claim:
    rule = ("At each target where AEPO ran with both, the CI of AEPO with a teacher pi* minus AEPO with "
            f"the paper's temperature pi* lies above {th['min_gap']} (holds), or below 0 (does not hold); at "
            "several targets they must agree. Each score is judged separately, the verdict follows the headline score.")
    from analysis.scores import available_keys, table_score_label

    aepo = method_rows(table, "aepo")
    if score is None or "pistar" not in aepo or not {"teacher", "temperature"} <= set(aepo["pistar"].dropna()):
        return Claim("C8", STATEMENTS["C8"], rule, UNKNOWN, "needs AEPO runs with target_distribution teacher "
                     "and temperature (sweeps/pistar.yaml)")
    details, headline = [], (UNKNOWN, "no target with both")
    for key in available_keys(table):
        v, ev = c8_score(aepo, key, th)
        details.append(f"{table_score_label(table, key)}: {v}. {ev}")
        if key == score:
            headline = (v, f"{table_score_label(table, key)}: {ev}")
    return Claim("C8", STATEMENTS["C8"], rule, headline[0], headline[1], details)


def c8_score(aepo: pd.DataFrame, score: str, th: Mapping[str, Any]) -> tuple[str, str]:
    verdicts, parts = [], []
    for t, rows in sorted(by_target(aepo).items()):
        teach = rows[(rows["pistar"] == "teacher") & rows[score].notna()]
        temp = rows[(rows["pistar"] == "temperature") & rows[score].notna()]
        if teach.empty or temp.empty:
            continue
        d = difference_ci(teach[score].to_numpy(dtype=float), temp[score].to_numpy(dtype=float),
                          groups_a=starts_of(teach), groups_b=starts_of(temp))
        enough = min(len(teach), len(temp)) >= th["min_seeds"]
        verdicts.append(UNKNOWN if not enough else HOLDS if d[1] > th["min_gap"] else FAILS if d[2] < 0 else UNKNOWN)
        parts.append(f"H*={t:.2f}: teacher minus temperature {fmt_ci(*d, scale=100, digits=1)} pts "
                     f"({len(teach)} and {len(temp)} runs)")
    verdict = verdicts[0] if verdicts and all(v == verdicts[0] for v in verdicts) else UNKNOWN  # targets disagree: undecided
    return verdict, "; ".join(parts) or "no target with both"


RULES: dict[str, Callable[[pd.DataFrame, str | None, Mapping[str, Any]], Claim]] = {
    "C1": judge_c1, "C2": judge_c2, "C3": judge_c3, "C4": judge_c4,
    "C5": judge_c5, "C6": judge_c6, "C7": judge_c7, "C8": judge_c8,
}


def judge_all(table: pd.DataFrame, score: str | None, th: Mapping[str, Any] = THRESHOLDS) -> list[Claim]:
    """Every claim's verdict. table: the run table (analysis.summary.run_table) of finished runs;
    score: the headline score key (analysis.scores.primary_key). With runs from several starts,
    each claim is judged pooled and per start, and stands only where they agree."""
    pooled = [rule(table, score, th) for rule in RULES.values()]
    starts = sorted(table["start"].dropna().unique()) if "start" in table else []
    if len(starts) < 2:
        return pooled
    per = {s: [rule(table[table["start"] == s], score, th) for rule in RULES.values()] for s in starts}
    for i, claim in enumerate(pooled):
        claim.per_start = {s: per[s][i].verdict for s in starts}
        verdicts = list(claim.per_start.values())
        if any(v != claim.verdict for v in verdicts):
            k = sum(v == HOLDS for v in verdicts)
            claim.evidence = (f"holds on {k} of {len(starts)} starts (pooled: {claim.verdict}); "
                              + claim.evidence)
            claim.verdict = ACROSS_STARTS
        claim.details += [f"start {s}: {per[s][i].verdict}. {per[s][i].evidence}" for s in starts]
    return pooled
