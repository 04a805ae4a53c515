"""Answer extraction and math-verify grading, in-process or in a pool of worker processes.

`grade(response, gold)` is the in-process path (the training reward for math prompts).
`GradingPool` grades many answers in worker processes with a hard per-answer time limit:
math-verify's own time-outs use SIGALRM, which only fires in a process's main thread and
cannot interrupt long C calls (huge integer powers), so the parent also watches the clock and
kills a worker that overruns. A timed-out answer counts as wrong and is reported.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import multiprocessing as mp
from multiprocessing.connection import wait as wait_any
import re
import threading
import time
from collections import deque
from dataclasses import dataclass

log = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 1000  # longer extracted answers are graded wrong without parsing
MAX_BRACE_DEPTH = 40  # deeper LaTeX nesting is graded wrong without parsing
DEFAULT_TIMEOUT_S = 5.0  # hard wall-clock limit per answer in the pool
WORKER_MEMORY_GB = 4  # address-space limit of each pool worker

_BOX = re.compile(r"\\(?:boxed|fbox)\s*")
_ANSWER_IS = re.compile(r"(?:final answer|the answer)\s*(?:is|:)\s*(.+)", re.IGNORECASE)
_HASHES = re.compile(r"####\s*(.+)")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_INTEGER = re.compile(r"\$-?\d{1,100}\$")  # a _plain() integer


# Typical answer shapes, graded once by each pool worker at start-up: ANTLR (under
# math-verify's LaTeX parser) caches its prediction states, so later parses run faster.
WARMUP = [
    "-3", "0.5", "1,000", "\\frac{1}{2}", "-\\dfrac{3\\sqrt{2}}{4}", "2\\sqrt{3}", "\\sqrt[3]{5}",
    "3\\pi", "\\frac{\\pi}{6}", "x^2+2x-3", "(1,2)", "(-\\infty, 3]", "[0,1)\\cup(2,5]",
    "\\{1,2,3\\}", "1, 2, 3", "x=5", "y = -\\frac{1}{2}x + 3", "\\text{(C)}", "\\text{Monday}",
    "45^\\circ", "10\\%", "\\$18.50", "5\\text{ cm}", "\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}",
    "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "2^{10}", "e^{i\\pi}", "\\log_2 8",
    "\\sin x", "\\cos^2\\theta", "3+4i", "\\infty", "\\binom{5}{2}", "5!", "p \\leq 3",
    "\\left( 3, \\frac{\\pi}{2} \\right)", "\\frac{a+b}{c-d}", "\\pm 2", "x<-1 \\text{ or } x>1",
]


# ---- extraction ------------------------------------------------------------------------
def _closing_braces(text: str, start: int) -> dict[int, int]:
    """{index of '{': index of its matching '}'} for every balanced group in text[start:], in one
    pass with a stack (linear in the text, however the braces are nested or unbalanced)."""
    stack: list[int] = []
    close: dict[int, int] = {}
    for i in range(start, len(text)):
        c = text[i]
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            close[stack.pop()] = i
    return close


def last_boxed(text: str) -> str | None:
    """Content of the last balanced \\boxed{...} (or \\fbox{...}, or `\\boxed 5`) in text.
    Linear time: the matching braces are found once for the whole text."""
    matches = list(_BOX.finditer(text))
    if not matches:
        return None
    close = _closing_braces(text, matches[0].end())
    for m in reversed(matches):
        end = m.end()
        if end < len(text) and text[end] == "{":
            if end in close:
                return text[end + 1: close[end]].strip()
        elif end < len(text) and m.group(0)[-1].isspace():  # `\\boxed 5`
            token = re.match(r"[^\s$]+", text[end:end + MAX_ANSWER_CHARS + 1])
            if token:
                return token.group(0)
    return None


def _clean_tail(s: str) -> str:
    s = s.split("\n")[0].strip()
    s = re.sub(r"\s*I hope it is correct\.?$", "", s).strip()
    return s.rstrip(".").strip().strip("$").strip()


def extract_answer(response: str) -> str | None:
    """The final answer of a response: last \\boxed{}; else 'the answer is X'; else '#### X';
    else the last number. None when nothing is found."""
    if not response or not response.strip():
        return None
    boxed = last_boxed(response)
    if boxed is not None:
        return boxed
    for pattern in (_ANSWER_IS, _HASHES):
        hits = pattern.findall(response)
        if hits and _clean_tail(hits[-1]):
            return _clean_tail(hits[-1])
    numbers = _NUMBER.findall(response)
    return numbers[-1] if numbers else None


# ---- comparison ------------------------------------------------------------------------
def as_latex(answer: str) -> str:
    """Wrap an answer in $...$ (math-verify only reads LaTeX inside delimiters); strip an
    existing outer $...$ pair or \\( \\) first. Floats of whole numbers (AMC's 27.0) become 27."""
    s = str(answer).strip()
    if re.fullmatch(r"-?\d+\.0+", s):
        s = s.split(".")[0]
    if s.startswith("$") and s.endswith("$") and len(s) > 1:
        s = s.strip("$").strip()
    elif s.startswith("\\(") and s.endswith("\\)"):
        s = s[2:-2].strip()
    return f"${s}$"


def _plain(answer: str) -> str:
    """An answer's LaTeX with whitespace and spacing commands removed (for the fast path)."""
    return re.sub(r"\s+|\\[,;:! ]", "", as_latex(answer))


def _too_hard(answer: str) -> bool:
    """Cheap guard against inputs that would stall the parser (checked before parsing)."""
    if len(answer) > MAX_ANSWER_CHARS:
        return True
    depth = peak = 0
    for c in answer:
        depth += (c == "{") - (c == "}")
        peak = max(peak, depth)
    return peak > MAX_BRACE_DEPTH


class GradingTimeout(Exception):
    """math-verify gave up on an answer (its SIGALRM time-out fired)."""


def _math_verify():
    import math_verify  # ~0.6 s import (sympy): deferred so `aepo --help` stays instant

    return math_verify


@functools.lru_cache(maxsize=1)
def _extraction_config():
    mv = _math_verify()
    return (mv.LatexExtractionConfig(), mv.ExprExtractionConfig())


def _parse(latex: str, timeout_s: int | None) -> list:
    mv = _math_verify()
    try:
        return mv.parse(latex, extraction_config=_extraction_config(), parsing_timeout=timeout_s,
                        raise_on_error=True)
    except mv.errors.TimeoutException as e:
        raise GradingTimeout from e
    except Exception:  # unparsable: math-verify's own fallback would give [], i.e. wrong
        return []


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold_latex: str, timeout_s: int | None) -> tuple:
    return tuple(_parse(gold_latex, timeout_s))


def _verify(gold: tuple, pred: list, timeout_s: int | None) -> bool:
    """True if any (gold, pred) candidate pair matches; a pair that errors is skipped."""
    mv = _math_verify()
    for g in gold:
        for p in pred:
            try:
                if mv.verify(g, p, timeout_seconds=timeout_s, raise_on_error=True):
                    return True
            except mv.errors.TimeoutException as e:
                raise GradingTimeout from e
            except Exception:
                continue
    return False


def grade_extracted(extracted: str | None, gold: str, timeout_s: int | None = 1,
                    fast_path: bool = True) -> bool:
    """Compare an extracted answer with a gold answer. Raises GradingTimeout when math-verify
    times out; `timeout_s=None` disables its signal-based time-outs (needed off the main thread).
    `fast_path`: decide identical LaTeX (up to spacing) and pairs of integers without
    math-verify; off in tests that check math-verify itself."""
    if extracted is None or not extracted.strip() or _too_hard(extracted):
        return False
    if fast_path:
        a, b = _plain(extracted), _plain(gold)
        if a == b:  # the same LaTeX up to spacing and $
            return True
        if _INTEGER.fullmatch(a) and _INTEGER.fullmatch(b):  # two integers: exact comparison
            return int(a.strip("$")) == int(b.strip("$"))
    gold_parsed = _parse_gold(as_latex(gold), timeout_s)
    if not gold_parsed:
        return False
    return _verify(gold_parsed, _parse(as_latex(extracted), timeout_s), timeout_s)


def grade(response: str, gold: str, timeout_s: int = 1) -> bool:
    """Grade one response against one gold answer in this process (training reward path).

    In the main thread math-verify's SIGALRM time-outs apply (a time-out counts as wrong);
    elsewhere signals are unavailable, so they are switched off and only the size/nesting
    guard protects against pathological answers.
    """
    in_main = threading.current_thread() is threading.main_thread()
    g = _grade_task(response, gold, timeout_s if in_main else None)
    if g.timed_out:
        log.warning("grading timed out; counted as wrong")
    return g.correct


# ---- process pool ----------------------------------------------------------------------
@dataclass
class Graded:
    extracted: str | None
    correct: bool
    timed_out: bool = False


def _grade_task(response: str, gold: str, timeout_s: int, fast_path: bool = True) -> Graded:
    extracted = extract_answer(response)
    try:
        return Graded(extracted, grade_extracted(extracted, gold, timeout_s, fast_path))
    except GradingTimeout:
        return Graded(extracted, False, timed_out=True)


def _worker(conn, timeout_s: int, fast_path: bool, warmup: list[str]) -> None:
    """Worker loop: receive (index, response, gold), send back (index, Graded)."""
    import resource

    # a runaway answer raises MemoryError (graded wrong) instead of exhausting the machine
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    cap = WORKER_MEMORY_GB << 30
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    for answer in warmup or ["1"]:  # import math-verify and warm its parser's prediction cache
        _grade_task(f"\\boxed{{{answer}}}", "0", timeout_s, fast_path=False)
    conn.send("ready")
    while True:
        task = conn.recv()
        if task is None:
            os._exit(0)  # skip interpreter teardown of large sympy caches
        i, response, gold = task
        conn.send((i, _grade_task(response, gold, timeout_s, fast_path)))


class GradingPool:
    """A pool of grading processes with a hard per-answer time limit.

    Each worker holds one answer at a time. math-verify's own time-outs (about half the
    limit, in whole seconds) end most slow answers softly; a worker still busy at the limit
    is killed and replaced, and its answer counts as wrong and timed out.
    Use as a context manager; `startup_s` is the time to bring the workers up.
    """

    def __init__(self, workers: int = 2, timeout_s: float = DEFAULT_TIMEOUT_S, fast_path: bool = True):
        self.timeout_s = timeout_s
        self.fast_path = fast_path
        self.inner_timeout = max(1, math.floor(timeout_s / 2))
        self._ctx = mp.get_context("spawn")  # no fork: the parent may hold torch threads
        t0 = time.perf_counter()
        self._workers = [self._spawn(WARMUP) for _ in range(max(1, workers))]
        for proc, conn in self._workers:
            self._await_ready(proc, conn)
        self.startup_s = time.perf_counter() - t0

    def _spawn(self, warmup: list[str] | None = None):
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker, args=(child, self.inner_timeout, self.fast_path, warmup),
                                 daemon=True)
        proc.start()
        child.close()
        return proc, parent

    @staticmethod
    def _await_ready(proc, conn) -> None:
        try:
            ok = conn.poll(120) and conn.recv() == "ready"
        except EOFError:
            ok = False
        if not ok:
            proc.kill()
            raise RuntimeError("grading worker failed to start")

    def grade_many(self, pairs: list[tuple[str, str]]) -> list[Graded]:
        """Grade (response, gold) pairs; results in input order."""
        results: list[Graded | None] = [None] * len(pairs)
        queue = deque(range(len(pairs)))
        busy: dict[int, tuple[int, float]] = {}  # worker slot -> (task index, start time)

        def submit(slot: int) -> None:
            if queue:
                i = queue.popleft()
                self._workers[slot][1].send((i, *pairs[i]))
                busy[slot] = (i, time.monotonic())

        for slot in range(len(self._workers)):
            submit(slot)
        while busy:
            conns = [self._workers[s][1] for s in busy]
            ready = wait_any(conns, timeout=0.05)
            for slot in list(busy):
                proc, conn = self._workers[slot]
                i, started = busy[slot]
                if conn in ready:
                    try:
                        _, results[i] = conn.recv()
                    except EOFError:  # the worker died (crash, out of memory)
                        results[i] = self._replace(slot, pairs[i][0], "crashed the worker")
                elif time.monotonic() - started > self.timeout_s:
                    results[i] = self._replace(slot, pairs[i][0], f"exceeded {self.timeout_s:.1f}s")
                else:
                    continue
                del busy[slot]
                submit(slot)
        return results  # type: ignore[return-value]

    def _replace(self, slot: int, response: str, why: str) -> Graded:
        """Kill and restart one worker; its answer counts as wrong and timed out."""
        log.warning("grading an answer %s; counted as wrong and timed out: %.80r", why, response)
        proc, conn = self._workers[slot]
        proc.kill()
        proc.join()
        conn.close()
        self._workers[slot] = self._spawn()  # no warm-up: the other workers are waiting
        self._await_ready(*self._workers[slot])
        # nothing that reads model output runs in the parent: the answer is not extracted again here
        return Graded(None, False, timed_out=True)

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers (for CPU accounting in benchmarks)."""
        return [proc.pid for proc, _ in self._workers]

    def close(self) -> None:
        for proc, conn in self._workers:
            try:
                conn.send(None)
            except OSError:
                pass
        for proc, _ in self._workers:
            proc.join(timeout=2)
            if proc.is_alive():
                proc.kill()

    def __enter__(self) -> "GradingPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
