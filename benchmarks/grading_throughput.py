"""Grading throughput of the process pool on MATH500 responses (answers/s).

Responses are the reference solutions (right answers) and the same solutions with the last
\\boxed{} answer perturbed (wrong answers), so both the fast path and the full math-verify
parse are exercised. Start-up (spawning and warming the workers) is timed separately.

    python benchmarks/grading_throughput.py [--data-dir ../shared/data/eval] [--workers 2]

Target (issue 4): at least 300 answers/s on 2 cores once the pool is up. A worker that is
killed on a time-out is replaced, which would make the CPU accounting undercount; none is
killed on these inputs.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path


def perturb(solution: str, answer: str) -> str:
    """The solution with its final boxed answer replaced by a wrong one: an integer plus one,
    or the expression plus one (which math-verify must parse)."""
    wrong = str(int(answer) + 1) if re.fullmatch(r"-?\d+", answer) else f"{answer} + 1"
    i = solution.rfind("\\boxed")
    return solution[:i] + f"\\boxed{{{wrong}}}"


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes and this one (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = time.process_time()
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def main() -> None:
    default_data = os.environ.get(
        "AEPO_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "eval")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(default_data))
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--timeout", type=float, default=5.0, help="per-answer limit in seconds")
    args = ap.parse_args()

    from aepo.eval.benchmarks import load_benchmark
    from aepo.tasks.grading import GradingPool

    problems = load_benchmark("math500", args.data_dir)
    sources = {p.id: p.row for p in problems}
    right = [(sources[p.id]["solution"], p.gold) for p in problems]
    wrong = [(perturb(sources[p.id]["solution"], p.gold), p.gold) for p in problems]

    with GradingPool(workers=args.workers, timeout_s=args.timeout) as pool:
        print(f"start-up: {pool.startup_s:.2f} s for {args.workers} workers")
        total = cpu = 0.0
        for name, pairs, expect in (("right", right, True), ("wrong", wrong, False)):
            t0, c0 = time.perf_counter(), cpu_seconds(pool.pids)
            results = pool.grade_many(pairs)
            dt = time.perf_counter() - t0
            total += dt
            cpu += cpu_seconds(pool.pids) - c0
            agree = sum(r.correct == expect for r in results)
            timeouts = sum(r.timed_out for r in results)
            print(f"{name:5s}: {len(pairs)} answers in {dt:.2f} s = {len(pairs) / dt:.0f} answers/s "
                  f"(graded as expected: {agree}/{len(pairs)}, time-outs: {timeouts})")
        n = len(right) + len(wrong)
        print(f"all: {n} answers in {total:.2f} s = {n / total:.0f} answers/s")
        # on a busy machine wall time understates the pool; CPU time does not
        print(f"CPU: {cpu:.2f} core-seconds = {n / cpu:.0f} answers per core-second "
              f"(~{args.workers * n / cpu:.0f} answers/s on {args.workers} idle cores)")


if __name__ == "__main__":
    main()
