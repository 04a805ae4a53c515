"""Answer extraction, math-verify grading, and the time-limited grading pool.

The benchmark checks grade each benchmark's golds against its own reference (solution or
answer) with the real files in shared/data/eval, as the issue asks: 100% for aime24, amc23,
gsm8k and math500; >= 99% for minerva_math and olympiadbench; >= 85% for college_math.
"""

import os
import re
import threading
import time
from pathlib import Path

import pytest

from aepo.eval.benchmarks import load_benchmark
from aepo.tasks.grading import GradingPool, as_latex, extract_answer, grade

DATA = Path(os.environ.get("AEPO_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "eval"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared eval data not found at {DATA}")


# ---- extraction --------------------------------------------------------------------------
def test_extract_takes_the_last_balanced_box():
    assert extract_answer(r"first \boxed{1}, then \boxed{\frac{1}{2}}.") == r"\frac{1}{2}"
    assert extract_answer(r"so $\boxed{x^{2}+1}$") == "x^{2}+1"
    assert extract_answer(r"\fbox{7}") == "7"
    assert extract_answer(r"hence \boxed 5$") == "5"


def test_extract_falls_back_to_answer_phrases_hashes_and_the_last_number():
    assert extract_answer("The final answer is $42$. I hope it is correct.") == "42"
    assert extract_answer("work...\n#### 1,000") == "1,000"
    assert extract_answer("it is 3 or maybe 4") == "4"


def test_extract_finds_nothing_in_empty_or_numberless_text():
    assert extract_answer("") is None
    assert extract_answer("   ") is None
    assert extract_answer("no idea") is None


def test_golds_are_wrapped_in_dollars_once_and_whole_floats_lose_their_point():
    assert as_latex(r"\frac{1}{2}") == r"$\frac{1}{2}$"
    assert as_latex(r"$2n-2$") == r"$2n-2$"
    assert as_latex("27.0") == "$27$"


# ---- in-process grade (the training reward) ----------------------------------------------
def test_grade_accepts_equivalent_forms_and_rejects_wrong_ones():
    assert grade(r"so \boxed{\dfrac{1}{2}}", "0.5")
    assert grade(r"\boxed{27}", "27.0")
    assert grade(r"\boxed{x = 3}", "3")
    assert grade(r"\boxed{(1, 2)}", r"$(1,2)$")
    assert not grade(r"\boxed{28}", "27.0")
    assert not grade(r"\boxed{\frac{1}{3}}", "0.5")
    assert not grade("", "1")
    assert not grade("I have no box and no number", "1")


def test_grade_works_off_the_main_thread():
    out = []
    t = threading.Thread(target=lambda: out.append((grade(r"\boxed{4}", "4"), grade(r"\boxed{5}", "4"))))
    t.start()
    t.join(30)
    assert out == [(True, False)]


def test_grade_gives_up_on_a_pathological_answer_quickly():
    t0 = time.perf_counter()
    assert not grade("\\boxed{" + "\\frac{1}{" * 35 + "2" + "}" * 35 + "}", "1")
    assert time.perf_counter() - t0 < 5


# ---- the pool on real benchmark files ------------------------------------------------------
@pytest.fixture(scope="module")
def pool():
    with GradingPool(workers=2, timeout_s=5) as p:
        yield p


@pytest.fixture(scope="module")
def mv_pool():
    """math-verify alone: no fast path for identical LaTeX."""
    with GradingPool(workers=2, timeout_s=5, fast_path=False) as p:
        yield p


def reference(name, problem):
    """The benchmark's own reference for a problem: its solution where the gold comes from it,
    else the gold answer as a model would write it (boxed, without $)."""
    if name in ("math500", "math", "minerva_math"):
        return problem.row["solution"]
    if name == "gsm8k":
        return problem.row["answer"]
    raw = problem.row["answer"] if name in ("amc23", "aime24", "college_math") else problem.gold
    return rf"The final answer is \boxed{{{str(raw).strip().strip('$')}}}."


def graded_fraction(pool, name, problems):
    results = pool.grade_many([(reference(name, p), p.gold) for p in problems])
    return sum(r.correct for r in results) / len(results)


@needs_data
@pytest.mark.parametrize("name, floor", [
    ("aime24", 1.0), ("amc23", 1.0), ("gsm8k", 1.0), ("math500", 1.0), ("math", 1.0),
    ("minerva_math", 0.99), ("olympiadbench", 0.99), ("college_math", 0.85),
])
def test_benchmark_golds_grade_right_against_their_own_references(pool, name, floor):
    problems = load_benchmark(name, DATA)
    frac = graded_fraction(pool, name, problems)
    print(f"{name}: {100 * frac:.2f}% of {len(problems)} golds graded right")
    assert frac >= floor


@needs_data
@pytest.mark.parametrize("name, floor, every", [
    ("aime24", 1.0, 1), ("amc23", 1.0, 1), ("gsm8k", 1.0, 4), ("math500", 1.0, 1),
    ("minerva_math", 0.99, 2), ("olympiadbench", 0.99, 2), ("college_math", 0.85, 40),
])
def test_math_verify_alone_grades_the_golds_right(mv_pool, name, floor, every):
    # every `every`-th problem, to keep the suite fast; identical strings are not short-cut
    problems = load_benchmark(name, DATA)[::every]
    frac = graded_fraction(mv_pool, name, problems)
    print(f"{name} (math-verify only): {100 * frac:.2f}% of {len(problems)}")
    assert frac >= floor


def perturbed(gold):
    """A wrong answer: an integer plus one, or the expression plus one."""
    g = as_latex(gold).strip("$")
    return str(int(g) + 1) if re.fullmatch(r"-?\d+", g) else f"{g}+1"


@needs_data
@pytest.mark.parametrize("name, every", [("aime24", 1), ("amc23", 1), ("gsm8k", 4), ("math500", 2)])
def test_perturbed_golds_grade_wrong(pool, name, every):
    problems = load_benchmark(name, DATA)[::every]
    results = pool.grade_many([(rf"\boxed{{{perturbed(p.gold)}}}", p.gold) for p in problems])
    assert not any(r.correct for r in results)


PATHOLOGICAL = {
    "deeply nested fractions": ("\\boxed{" + "\\frac{1}{" * 35 + "2" + "}" * 35 + "}", "1"),
    "deeply nested braces": ("\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}", "1"),
    "tower of powers": (r"\boxed{10^{10^{10^{10}}}}", "3"),
    "huge factorial": (r"\boxed{(10^{10})!}", "5"),
    "huge number": ("\\boxed{" + "9" * 5000 + "}", "1"),
    "empty response": ("", "1"),
    "no box": ("I do not know.", "1"),
    "unbalanced box": (r"\boxed{\frac{1}{2}", "1/2"),
}


def test_pathological_answers_finish_in_time_and_count_as_wrong(pool):
    t0 = time.perf_counter()
    results = pool.grade_many(list(PATHOLOGICAL.values()))
    # two workers, at most 5 s per answer
    assert time.perf_counter() - t0 < 5 * len(PATHOLOGICAL) / 2 + 5
    assert not any(r.correct for r in results)


def test_an_answer_over_the_hard_limit_kills_its_worker_and_the_pool_goes_on():
    # a 0.5 s hard limit is below math-verify's own 1 s time-out: the parent must kill the worker
    with GradingPool(workers=1, timeout_s=0.5) as p:
        slow, right = PATHOLOGICAL["deeply nested fractions"], (r"\boxed{2}", "2")
        results = p.grade_many([slow, right, slow, right])
    assert [(r.correct, r.timed_out) for r in results] == [(False, True), (True, False)] * 2

