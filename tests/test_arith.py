"""The generated arithmetic task (`data.train_file=arith`, issue 15)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from aepo.config import DataConfig
from aepo.tasks import arith
from aepo.tasks.prompts import load_task


def test_arith_holds_out_30_percent_of_each_levels_numbers_at_most_25_in_every_phrasing():
    train, heldout = arith.items("train"), arith.items("heldout")
    assert len(heldout) == 580 and len(train) == 1760
    # 25 problems x 5 phrasings per level; level 2 (a - b, 55 problems) holds out 16
    assert {lvl: sum(r["level"] == lvl for r in heldout) for lvl in "12345"} == {"1": 125, "2": 80, "3": 125,
                                                                                  "4": 125, "5": 125}
    assert not {r["problem"] for r in train} & {r["problem"] for r in heldout}

    expr = lambda r: r["problem"].replace(arith.INSTRUCTION, "").strip().rstrip("?.").split(" ", 1)[1].removeprefix("is ")
    assert not {expr(r) for r in train} & {expr(r) for r in heldout}  # split by the numbers, not the phrasing
    assert [r["level"] for r in heldout[:5]] == list("12345")  # the levels interleave: a prefix holds them all


def test_arith_is_the_same_problems_on_every_machine():
    def digest(split):
        return hashlib.sha256(json.dumps(arith.items(split)).encode()).hexdigest()

    # the problems as generated when the task was written: a change to them is a new task
    assert digest("heldout") == "795d05db1fd2336fef31654b9386d395fe539c8d0fe25054441b59654b85911a"
    assert digest("train") == "047401a11291b8187f6da0f469dd0e677890a31f93a168b87e5d99bb58471399"
    assert arith.items("heldout")[0] == {"problem": "What is 0 + 6? Answer with the number in \\boxed{}.",
                                         "answer": "6", "level": "1"}


@pytest.mark.parametrize("response, right", [
    ("6 + 15 = 21, so \\boxed{21}", 1.0),   # a path, then the box
    ("\\boxed{21.0}", 1.0),                   # math-verify: the same number
    ("The answer is 21.", 1.0),               # no box: the grader reads the last number (aepo/tasks/grading.py)
    ("\\boxed{20}", 0.0),
])
def test_an_arith_response_is_right_when_its_box_holds_the_answer(response, right):
    task = load_task(DataConfig(train_file="arith"), Path("."))
    assert task.name == "arith" and task.template == "{problem}"
    assert task.reward("21", response) == right
