"""The generated arithmetic task (`data.train_file=arith`, issue 15)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from aepo.config import DataConfig
from aepo.tasks import arith
from aepo.tasks.prompts import load_task


def test_arith_holds_out_100_problems_per_level_never_trained_on():
    train, heldout = arith.items("train"), arith.items("heldout")
    assert len(heldout) == 500 and len(train) == 6403
    assert {lvl: sum(r["level"] == lvl for r in heldout) for lvl in "12345"} == dict.fromkeys("12345", 100)
    assert not {r["problem"] for r in train} & {r["problem"] for r in heldout}
    assert [r["level"] for r in heldout[:5]] == list("12345")  # the levels interleave: a prefix holds them all


def test_arith_is_the_same_problems_on_every_machine():
    def digest(split):
        return hashlib.sha256(json.dumps(arith.items(split)).encode()).hexdigest()

    # the problems as generated when the task was written: a change to them is a new task
    assert digest("heldout") == "89ee6ba7cf35c2b01dc4bd75f817d030680eca5725b4afdd5a6a8c03c477fabd"
    assert digest("train") == "aed7aff560873405bee376dd17d4270be52ff2445b4be1fdadee01afe1af5f9a"
    assert arith.items("heldout")[0] == {"problem": "What is 11 + 4? Answer with the number in \\boxed{}.",
                                         "answer": "15", "level": "1"}


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
