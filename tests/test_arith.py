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
    # 25 problems x 5 phrasings per level; level 2 (a - b, 55 problems) holds out 16; level 1 trains on 500 of 775
    assert {lvl: sum(r["level"] == lvl for r in heldout) for lvl in "12345"} == {"1": 125, "2": 80, "3": 125,
                                                                                  "4": 125, "5": 125}
    assert {lvl: sum(r["level"] == lvl for r in train) for lvl in "12345"} == {"1": 500, "2": 195, "3": 375,
                                                                                "4": 325, "5": 365}
    assert not {r["problem"] for r in train} & {r["problem"] for r in heldout}

    expr = lambda r: r["problem"].replace(arith.INSTRUCTION, "").strip().rstrip("?.").split(" ", 1)[1].removeprefix("is ")
    assert not {expr(r) for r in train} & {expr(r) for r in heldout}  # split by the numbers, not the phrasing
    assert [r["level"] for r in heldout[:5]] == list("12345")  # the levels interleave: a prefix holds them all


def test_arith_is_the_same_problems_on_every_machine():
    def digest(split):
        return hashlib.sha256(json.dumps(arith.items(split)).encode()).hexdigest()

    # the problems as generated when the task was written: a change to them is a new task
    assert digest("heldout") == "45e7611522bc74a4f957990e9ac2cf29129d1e6f26aaf8c6a4995476c1f0052a"
    assert digest("train") == "4eeabe4bbd9ac3489bb081bf6acc3875a13aded9c11d559d569a188342319268"
    assert arith.items("heldout")[0] == {"problem": "What is 0 + 31? Answer with the number in \\boxed{}.",
                                         "answer": "31", "level": "1"}


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


def test_aepo_eval_grades_responses_to_the_arith_benchmark_without_a_data_directory_and_by_level(tmp_path):
    from typer.testing import CliRunner

    from aepo.cli import app

    first = arith.items("heldout")[0]  # 'What is 0 + 31? ...' -> 31
    rows = [{"benchmark": "arith", "id": 0, "response": f"0 + 31 = \\boxed{{{first['answer']}}}"},
            {"benchmark": "arith", "id": "1", "response": "\\boxed{7}"}]  # 9 - 3 = 6
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    res = CliRunner().invoke(app, ["eval", "--responses", str(tmp_path / "r.jsonl"), "--out", str(tmp_path / "out"),
                                   "--workers", "1"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["benchmarks"]["arith"]["accuracy"] == 0.5
    assert {lv: s["accuracy"] for lv, s in summary["by_level"]["arith"].items()} == {"1": 1.0, "2": 0.0}
