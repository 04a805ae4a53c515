"""Arithmetic for a small instruct model (issue 15): a generated, verifiable task at graded difficulty.

`--set data.train_file=arith` trains on it (no file: the problems are generated here, the same on
every machine). Each problem asks for one number in `\\boxed{}` and is graded by math-verify like
any math prompt (aepo.tasks.prompts.math_reward); a response may reason first (any path to the
right box counts), but the answers fit in ~32 tokens.

Five levels sized for SmolLM2-135M-Instruct, whose start samples (T = 1, 32 tokens, 580 held-out
prompts x 4) right answers to 26 % of level 1 (n + 0, an easy level so the start is off the floor),
17 % of level 2 (single-digit differences), 23 % of level 3 (single-digit sums), 14 % of level 4
(teen + digit) and 7 % of level 5 (2n): 17.4 % overall (`aepo eval --model smollm2-135m
--benchmarks arith --template chat --n 4 --temperature 1`; two-digit sums, 2 %, were dropped).
Easy levels have few distinct problems, so each problem is asked in five
phrasings, and the held-out split is by the numbers: 30 % of each level's problems (at most 25), in
every phrasing, are never trained on (580 held-out prompts, `aepo eval --benchmarks arith`); up to
500 prompts per level train (1,760 in all). Each level is shuffled once with a fixed seed.
"""

from __future__ import annotations

import random
from typing import Callable

NAME = "arith"
HELDOUT_FRACTION = 0.3  # of a level's distinct problems, at most HELDOUT_MAX
HELDOUT_MAX = 25
TRAIN_PER_LEVEL = 500  # prompts
SEED = 20261203
INSTRUCTION = "Answer with the number in \\boxed{}."
PHRASINGS = ("What is {e}?", "Compute {e}.", "Calculate {e}.", "Evaluate {e}.", "Find {e}.")


# level -> (what it is, every distinct problem as (expression, answer))
LEVELS: dict[int, tuple[str, Callable[[], list[tuple[str, int]]]]] = {
    1: ("n + 0 and 0 + n, n in 10-99", lambda: [(f"{n} + 0", n) for n in range(10, 100)]
                                              + [(f"0 + {n}", n) for n in range(10, 100)]),
    2: ("a - b, 0 <= b <= a <= 9", lambda: [(f"{a} - {b}", a - b) for a in range(10) for b in range(a + 1)]),
    3: ("a + b, a and b in 0-9", lambda: [(f"{a} + {b}", a + b) for a in range(10) for b in range(10)]),
    4: ("a + b, a in 10-19, b in 1-9", lambda: [(f"{a} + {b}", a + b) for a in range(10, 20) for b in range(1, 10)]),
    5: ("2 * n, n in 2-99", lambda: [(f"2 * {n}", 2 * n) for n in range(2, 100)]),
}


def question(expr: str, phrasing: str) -> str:
    return f"{phrasing.format(e=expr)} {INSTRUCTION}"


def items(split: str) -> list[dict[str, str]]:
    """Rows {'problem', 'answer', 'level'} of 'train' or 'heldout', the levels interleaved (so the
    first rows of either split hold every level)."""
    per_level = []
    for level, (_, space) in LEVELS.items():
        problems = space()
        random.Random(SEED + level).shuffle(problems)
        n_out = min(HELDOUT_MAX, round(HELDOUT_FRACTION * len(problems)))
        part = problems[:n_out] if split == "heldout" else problems[n_out:]
        rows = [{"problem": question(e, ph), "answer": str(ans), "level": str(level)} for e, ans in part for ph in PHRASINGS]
        per_level.append(rows if split == "heldout" else rows[:TRAIN_PER_LEVEL])
    rows = []
    for i in range(max(len(p) for p in per_level)):
        rows += [p[i] for p in per_level if i < len(p)]
    return rows
