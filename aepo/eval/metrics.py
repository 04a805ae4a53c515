"""Benchmark scores from per-problem correctness: accuracy (= avg@K) and unbiased pass@k.

avg@K: the mean over problems of the fraction of a problem's K samples that are right.
pass@k: the chance that at least one of k samples drawn without replacement from a
problem's n samples is right, averaged over problems; unbiased estimator of Chen et al.
(arXiv 2107.03374, Eq. 1): pass@k = 1 - C(n - c, k) / C(n, k) with c right samples.
"""

from __future__ import annotations

import math


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with c right answers among n samples (k <= n)."""
    if not 0 < k <= n or not 0 <= c <= n:
        raise ValueError(f"need 0 < k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}")
    if n - c < k:  # every k-subset holds a right answer
        return 1.0
    # 1 - C(n-c, k) / C(n, k) = 1 - prod_{i=n-c+1}^{n} (1 - k / i), stable for large n
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def ks_for(n: int) -> list[int]:
    """The k reported for n samples per problem: powers of two below n, and n."""
    ks = [1 << j for j in range(n.bit_length()) if (1 << j) < n]
    return [*ks, n]


def score(correct: dict[str, list[bool]], timeouts: int = 0) -> dict[str, float | int]:
    """Scores of one benchmark. correct: problem id -> correctness of each of its K samples.

    Returns {'n': problems, 'samples': K, 'accuracy', 'avg@K', 'pass@k' for k in ks_for(K),
    'timeouts'}; accuracy is avg@K (plain accuracy when K = 1). K is the smallest count of
    samples over problems: pass@k needs k <= n for every problem.
    """
    if not correct:
        raise ValueError("no graded responses")
    k_max = min(len(v) for v in correct.values())
    acc = sum(sum(v) / len(v) for v in correct.values()) / len(correct)
    out: dict[str, float | int] = {"n": len(correct), "samples": k_max, "accuracy": acc,
                                   f"avg@{k_max}": acc}
    for k in ks_for(k_max):
        out[f"pass@{k}"] = sum(pass_at_k(len(v), sum(v), k) for v in correct.values()) / len(correct)
    out["timeouts"] = timeouts
    return out


def average(scores: dict[str, dict[str, float | int]]) -> dict[str, float]:
    """Unweighted mean over benchmarks of every float score they all report."""
    keys = set.intersection(*(set(s) for s in scores.values())) if scores else set()
    keys = {k for k in keys if k not in ("n", "samples", "timeouts")}
    return {k: sum(s[k] for s in scores.values()) / len(scores) for k in sorted(keys)}
