"""Arithmetic for a small instruct model (issue 15): a generated, verifiable task at graded difficulty.

`--set data.train_file=arith` trains on it (no file: the problems are generated here, the same on
every machine). Each problem asks for one number in `\\boxed{}` and is graded by math-verify like
any math prompt (aepo.tasks.prompts.math_reward); a response may reason first (any path to the
right box counts), but the answers fit in ~32 tokens.

Five levels, each its own space of distinct problems, shuffled once with a fixed seed: the first
100 of each level are held out (500 held-out problems, never trained on), up to 2000 more train.
"""

from __future__ import annotations

import random
from typing import Callable

NAME = "arith"
HELDOUT_PER_LEVEL = 100
TRAIN_PER_LEVEL = 2000
SEED = 20261203
INSTRUCTION = "Answer with the number in \\boxed{}."


def _pairs(lo: int, hi: int, lo2: int, hi2: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(lo, hi + 1) for b in range(lo2, hi2 + 1)]


# level -> (what it is, every distinct problem as (question, answer))
LEVELS: dict[int, tuple[str, Callable[[], list[tuple[str, int]]]]] = {
    1: ("a + b, a and b in 1-20, one of them below 10", lambda: [(f"{a} + {b}", a + b) for a, b in _pairs(1, 20, 1, 20)
                                                                if min(a, b) < 10]),
    2: ("a + b, two digits each", lambda: [(f"{a} + {b}", a + b) for a, b in _pairs(10, 99, 10, 99)]),
    3: ("a - b, two digits each, a > b", lambda: [(f"{a} - {b}", a - b) for a, b in _pairs(10, 99, 10, 99) if a > b]),
    4: ("a * b, a and b in 2-19", lambda: [(f"{a} * {b}", a * b) for a, b in _pairs(2, 19, 2, 19)]),
    5: ("a + b - c, a, b, c in 1-30", lambda: [(f"{a} + {b} - {c}", a + b - c)
                                             for a in range(1, 31) for b in range(1, 31) for c in range(1, 31)]),
}


def question(expr: str) -> str:
    return f"What is {expr}? {INSTRUCTION}"


def items(split: str) -> list[dict[str, str]]:
    """Rows {'problem', 'answer', 'level'} of 'train' or 'heldout', the levels interleaved (so the
    first rows of either split hold every level)."""
    per_level = []
    for level, (_, space) in LEVELS.items():
        problems = space()
        random.Random(SEED + level).shuffle(problems)
        part = problems[:HELDOUT_PER_LEVEL] if split == "heldout" else \
            problems[HELDOUT_PER_LEVEL:HELDOUT_PER_LEVEL + TRAIN_PER_LEVEL]
        per_level.append([{"problem": question(q), "answer": str(a), "level": str(level)} for q, a in part])
    rows = []
    for i in range(max(len(p) for p in per_level)):
        rows += [p[i] for p in per_level if i < len(p)]
    return rows
