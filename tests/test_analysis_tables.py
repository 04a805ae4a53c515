"""Tables: the Table 2 layout, the ablation and control tables, Markdown and LaTeX output."""

import pytest

from analysis import tables as T
from analysis.claims import THRESHOLDS
from analysis.load import frames
from analysis.summary import run_table
from analysis.synthetic import synthetic_study


@pytest.fixture(scope="module")
def study():
    f = frames(synthetic_study(targets=(0.5, 1.0), seeds=2, steps=20))
    return f, run_table(f, THRESHOLDS)


def test_table2_has_a_row_per_method_and_target_and_benchmark_average_and_delta_columns(study):
    f, _ = study
    t2 = T.table2(f.benchmarks, "val", "greedy")
    assert list(t2["method"]) == ["GRPO", "Entropy-Reg", "Entropy-Adv", "AEPO H*=0.50", "AEPO H*=1.00"]
    assert list(t2.columns) == ["method", "seeds", "tinylab", "average", "Δ GRPO (pts)"]
    assert t2.loc[0, "Δ GRPO (pts)"] == "–" and t2.loc[3, "Δ GRPO (pts)"].startswith("+")


def test_ablation_table_compares_each_ablation_with_aepo_at_its_target(study):
    _, table = study
    ab = T.ablation_table(table, "val:greedy:final")
    assert list(ab["method"]) == ["AEPO H*=0.50", "AEPO w/o temperature H*=0.50", "AEPO with negatives H*=0.50"]


def test_control_table_covers_the_aepo_family_only(study):
    _, table = study
    ct = T.control_table(table)
    assert all(m.startswith("AEPO") for m in ct["method"]) and len(ct) == 4


def test_control_table_has_a_row_per_controller_with_scores_and_step_time():
    from analysis.synthetic import synthetic_run

    runs = []
    for ctrl, sat in (("bang_bang", 0.0), ("pi", 1.0)):
        for s in range(2):
            r = synthetic_run("aepo", s, 0.5, steps=20)
            r.run_id = f"aepo__H0.5__c{ctrl}__s{s}"
            r.config["algo"]["controller"] = ctrl
            for m in r.metrics:
                m["controller/saturated"] = sat
            runs.append(r)
    ad = synthetic_run("aepo", 0, 0.5, steps=20)  # an entropy_adaptive run holds a target too
    ad.run_id, ad.config["algo"]["method"] = "entropy_adaptive__H0.5__s0", "entropy_adaptive"
    runs.append(ad)
    ct = T.control_table(run_table(frames(runs), THRESHOLDS))
    assert list(ct["controller"]) == ["bang-bang (paper)", "pi", "–"]
    # the controller varies between AEPO runs, so it is part of each condition's name (its variant)
    assert list(ct["method"]) == ["AEPO H*=0.50 c=bang_bang", "AEPO H*=0.50 c=pi", "Entropy-Adaptive H*=0.50"]
    assert list(ct["saturated"]) == ["0/2", "2/2", "–"]  # the last run never logged the key
    assert list(ct["step time (s)"])[:2] == ["0.050 [0.050, 0.050]"] * 2
    assert {"greedy (%)", "sampled pass@1 (%)", "worst seed"} <= set(ct.columns)


def test_cells_show_an_interval_only_with_more_than_one_seed():
    assert T.cell(0.5791, 0.561, 0.594) == "57.9 [56.1, 59.4]"
    assert T.cell(0.5791, float("nan"), float("nan")) == "57.9"
    assert T.cell(float("nan"), 0, 0) == "–"


def test_markdown_escapes_pipes_and_latex_escapes_special_characters():
    import pandas as pd

    df = pd.DataFrame({"mean |H−H*|": ["0.1"], "in band (%)": ["50_1"]})
    assert "mean \\|H−H*\\|" in T.to_markdown(df)
    tex = T.to_latex(df, "A & B", "tab:x")
    assert r"\%" in tex and r"50\_1" in tex and r"A \& B" in tex and r"\begin{tabular}{lr}" in tex


def test_table2_from_aepo_eval_summaries_averages_the_benchmarks():
    from analysis.synthetic import synthetic_run

    runs = []
    for method, acc in (("grpo", 0.5), ("aepo", 0.7)):
        for s in range(2):
            r = synthetic_run(method, s, 0.5, steps=4)
            r.evals = [{"benchmarks": {"gsm8k": {"accuracy": acc}, "math500": {"accuracy": acc - 0.2}},
                        "settings": {"temperature": 0.0}}]
            runs.append(r)
    t2 = T.table2(frames(runs).benchmarks, "eval", "greedy")
    assert list(t2.columns) == ["method", "seeds", "gsm8k", "math500", "average", "Δ GRPO (pts)"]
    assert t2.loc[1, "average"] == "60.0 [60.0, 60.0]" and t2.loc[1, "Δ GRPO (pts)"] == "+20.0 [20.0, 20.0]"


def test_each_lab_recipes_condition_is_compared_with_grpo_from_the_same_recipe():
    """A study over two recipes (tiny, tiny-weak) has a GRPO reference per recipe; a difference
    against the other recipe's GRPO would measure the starts, not the methods."""
    from analysis.synthetic import synthetic_run

    runs = []
    for start, grpo_acc, aepo_acc in (("tiny", 0.5, 0.6), ("tiny-weak", 0.1, 0.1)):
        for method, acc in (("grpo", grpo_acc), ("aepo", aepo_acc)):
            for s in range(2):
                r = synthetic_run(method, s, 0.5, steps=4)
                r.run_id = f"{method}__st{start}__s{s}"
                r.config["model"] = {"name_or_path": start}
                r.evals = [{"benchmarks": {"gsm8k": {"accuracy": acc}}, "settings": {"temperature": 0.0}}]
                runs.append(r)
    t2 = T.table2(frames(runs).benchmarks, "eval", "greedy").set_index("method")
    assert t2.loc["AEPO H*=0.50 lab=tiny", "Δ GRPO (pts)"] == "+10.0 [10.0, 10.0]"  # not +30 (pooled GRPO: 30 %)
    assert t2.loc["AEPO H*=0.50 lab=tiny-weak", "Δ GRPO (pts)"] == "+0.0 [0.0, 0.0]"  # not -20
