"""Glue for `aepo eval`: generate or read responses, grade them, score, write outputs.

Outputs of one evaluation in OUT_DIR:
- `samples.jsonl`: one row per graded response {benchmark, id, response, extracted, correct, timed_out}
- `summary.json`: {"benchmarks": {name: scores}, "average": {...}, "settings": {...}}, where
  scores are those of `aepo.eval.metrics.score` (n, samples, accuracy, avg@K, pass@k, timeouts).
Flat metric keys (W&B summary, sweep table columns) are `eval/<benchmark>/<score>`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from aepo.errors import UserError
from aepo.eval.benchmarks import ARITH, TINYLAB, Problem, load_benchmark
from aepo.eval.metrics import average, score
from aepo.rundir import (CHECKPOINT, EVAL_SUMMARY, flat_scores, make_dir, model_dir_of, read_jsonl, read_result,
                         write_json_atomic)
from aepo.config import MATH_PROMPT
from aepo.tasks.grading import DEFAULT_TIMEOUT_S, GradingPool
from aepo.tasks.prompts import prompt_texts, uses_chat

log = logging.getLogger(__name__)
CHAT = "chat"  # --template chat: the model's chat template around the plain math prompt
TINYLAB_MAX_NEW_TOKENS = 12  # the tiny lab's answers are 'x+y' (<= 9 characters) plus eos
ARITH_MAX_NEW_TOKENS = 32  # arith's answers fit, as its training runs sample them (rollout.max_new_tokens=32)


class EvalError(UserError):
    """Bad input to an evaluation (responses file, sweep dir); the message is one line."""


@dataclass
class EvalSettings:
    """Everything that decides an evaluation's numbers; stored in summary.json."""

    benchmarks: list[str]
    data_dir: str | None = None
    n: int = 1  # samples per problem K
    temperature: float = 0.0  # 0 = greedy
    max_new_tokens: int = 2048
    template: str = "qwen-math"  # a TEMPLATES name or a literal template with {problem}
    backend: str = "auto"  # auto | embedded | vllm
    device: str = "auto"
    batch_size: int = 32
    seed: int = 0
    limit: int | None = None  # first `limit` problems per benchmark (smoke tests)
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    grading_timeout_s: float = DEFAULT_TIMEOUT_S


# ---- grading and scoring ---------------------------------------------------------------
def grade_samples(rows: list[dict[str, str]], problems: dict[str, dict[str, Problem]],
                  pool: GradingPool | None) -> list[dict[str, Any]]:
    """Grade rows {benchmark, id, response} against their problems' golds.
    Math benchmarks go through the pool (needed only if there are any); the tiny lab uses its
    own reward in-process."""
    samples: list[dict[str, Any] | None] = [None] * len(rows)
    math_rows = []
    for i, r in enumerate(rows):
        gold = problems[r["benchmark"]][r["id"]].gold
        if r["benchmark"] == TINYLAB:
            from aepo.tasks.tinylab import reward

            samples[i] = {**r, "extracted": r["response"].strip(),
                          "correct": reward(gold, r["response"]) > 0, "timed_out": False}
        else:
            math_rows.append((i, r, gold))
    graded = pool.grade_many([(r["response"], gold) for _, r, gold in math_rows]) if math_rows else []
    for (i, r, _), g in zip(math_rows, graded):
        samples[i] = {**r, "extracted": g.extracted, "correct": g.correct, "timed_out": g.timed_out}
        if g.timed_out:
            log.warning("grading timed out on %s id %s; counted as wrong", r["benchmark"], r["id"])
    for i, r in enumerate(rows):  # a problem's difficulty level, where its benchmark names one (arith, math500)
        level = problems[r["benchmark"]][r["id"]].row.get("level")
        if level is not None:
            samples[i]["level"] = str(level)  # type: ignore[index]
    return samples  # type: ignore[return-value]


def score_summary(samples: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """summary.json content from graded samples; benchmarks whose problems name a difficulty level
    (arith, math500) are scored per level too (`by_level`)."""
    benches: dict[str, list[dict[str, Any]]] = defaultdict(list)
    levels: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for s in samples:
        benches[s["benchmark"]].append(s)
        if s.get("level") is not None:
            levels[s["benchmark"]][str(s["level"])].append(s)
    per = {b: score(_by_problem(g), sum(bool(s.get("timed_out")) for s in g)) for b, g in benches.items()}
    by_level = {b: {lv: score(_by_problem(g)) for lv, g in sorted(lvs.items())} for b, lvs in levels.items()}
    return {"benchmarks": per, "average": average(per), **({"by_level": by_level} if by_level else {}),
            "settings": settings}


def _by_problem(samples: list[dict[str, Any]]) -> dict[str, list[bool]]:
    """problem id -> correctness of each of its samples"""
    correct: dict[str, list[bool]] = defaultdict(list)
    for s in samples:
        correct[s["id"]].append(bool(s["correct"]))
    return dict(correct)


def write_outputs(out_dir: str | Path, samples: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """samples.jsonl, then summary.json, each written beside and renamed into place, so a crash
    never leaves a half file or a new summary beside old samples. JSON escapes non-ASCII text, so
    any text a model wrote (a lone surrogate included) is stored as it came."""
    out = make_dir(Path(out_dir))
    tmp = out / ".samples.jsonl.tmp"
    tmp.write_text("".join(json.dumps(s) + "\n" for s in samples), encoding="utf-8")
    os.replace(tmp, out / "samples.jsonl")
    write_json_atomic(out / "summary.json", summary)


# ---- the three modes -------------------------------------------------------------------
def load_problems(names: list[str], data_dir: str | None, model_dir: Path | None = None,
                  limit: int | None = None) -> dict[str, dict[str, Problem]]:
    return {b: {p.id: p for p in load_benchmark(b, data_dir, model_dir, limit)} for b in names}


def prompts_of(bench: str, template: str, tokenizer, problems: list[Problem]) -> list[str]:
    """The prompt texts: `--template chat` puts the plain math prompt (arith: the problem alone, which
    carries its instruction, as in training) in a user turn of the model's own chat template."""
    from aepo.eval import generate as gen

    if template == CHAT:
        body = "{problem}" if bench == ARITH else MATH_PROMPT
        return prompt_texts(tokenizer, body, [p.problem for p in problems], uses_chat(tokenizer, "always"))
    return [gen.format_prompt(template, p.problem) for p in problems]


def generate_responses(model_path: str | Path, problems: dict[str, dict[str, Problem]],
                       st: EvalSettings, echo: Callable[[str], None] = print) -> list[dict[str, str]]:
    """Rows {benchmark, id, response}: st.n per problem, in problem order."""
    from aepo.eval import generate as gen

    model_dir = model_dir_of(model_path)
    use_vllm = st.backend == "vllm" or (st.backend == "auto" and gen.vllm_available())
    model = tokenizer = llm = None
    if use_vllm:
        llm = gen.vllm_engine(model_dir, st.seed)
    else:
        model, tokenizer = gen.load_eval_model(model_dir, st.device)
    work = []  # (benchmark, template, max_new, prompts), every benchmark's batch checked before any runs
    for bench, probs in problems.items():
        template = "raw" if bench == TINYLAB else st.template
        max_new = {TINYLAB: TINYLAB_MAX_NEW_TOKENS, ARITH: ARITH_MAX_NEW_TOKENS}.get(bench, st.max_new_tokens)
        tk = tokenizer if llm is None else llm.get_tokenizer()
        prompts = prompts_of(bench, template, tk, list(probs.values()))
        if not use_vllm:
            gen.check_batch_fits(model, tokenizer, prompts, st.n, max_new, st.batch_size, template != CHAT)
        work.append((bench, template, max_new, prompts))
    rows = []
    for (bench, template, max_new, prompts), probs in zip(work, problems.values()):
        t0 = time.perf_counter()
        if use_vllm:
            outs = gen.generate_vllm(llm, prompts, st.n, st.temperature, max_new, st.seed)
        else:
            outs = gen.generate_embedded(model, tokenizer, prompts, st.n, st.temperature, max_new,
                                         st.batch_size, st.seed, special_tokens=template != CHAT)
        echo(f"{bench}: generated {len(prompts) * st.n} responses in {time.perf_counter() - t0:.1f}s")
        rows += [{"benchmark": bench, "id": pid, "response": r} for pid, rs in zip(probs, outs) for r in rs]
    return rows


def evaluate_model(model_path: str | Path, st: EvalSettings, out_dir: str | Path,
                   pool: GradingPool | None = None, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Generate, grade, score and write outputs for one model or run directory."""
    problems = load_problems(st.benchmarks, st.data_dir, model_dir_of(model_path), st.limit)
    rows = generate_responses(model_path, problems, st, echo)
    return _grade_and_write(rows, problems, st, out_dir, pool, echo, {"model": str(model_path)})


def read_responses(path: str | Path) -> list[dict[str, str]]:
    """Rows {benchmark, id, response} of a responses JSONL file; ids become strings."""
    rows = []
    for i, r in enumerate(read_jsonl(path)):
        try:
            rows.append({"benchmark": str(r["benchmark"]), "id": str(r["id"]),
                         "response": "" if r["response"] is None else str(r["response"])})
        except KeyError as e:
            raise EvalError(f"{path}: row {i + 1} needs 'benchmark', 'id' and 'response' (missing {e})") from None
    if not rows:
        raise EvalError(f"{path}: no responses")
    return rows


def evaluate_responses(path: str | Path, st: EvalSettings, out_dir: str | Path,
                       model_dir: str | Path | None = None,
                       echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Grade responses generated elsewhere against the golds of their benchmarks."""
    rows = read_responses(path)
    names = list(dict.fromkeys(r["benchmark"] for r in rows))
    problems = load_problems(names, st.data_dir, Path(model_dir) if model_dir else None)
    for i, r in enumerate(rows):
        if r["id"] not in problems[r["benchmark"]]:
            raise EvalError(f"{path}: row {i}: no problem with id '{r['id']}' in {r['benchmark']}")
    st.benchmarks = names
    return _grade_and_write(rows, problems, st, out_dir, None, echo, {"responses": str(path)})


def _grade_and_write(rows, problems, st: EvalSettings, out_dir, pool, echo, source) -> dict[str, Any]:
    own_pool = pool is None and any(r["benchmark"] != TINYLAB for r in rows)
    if own_pool:
        pool = GradingPool(st.workers, st.grading_timeout_s)
    try:
        t0 = time.perf_counter()
        samples = grade_samples(rows, problems, pool)
        echo(f"graded {len(samples)} responses in {time.perf_counter() - t0:.1f}s")
    finally:
        if own_pool:
            pool.close()  # type: ignore[union-attr]
    summary = score_summary(samples, {**source, **st.__dict__})
    write_outputs(out_dir, samples, summary)
    for b, s in summary["benchmarks"].items():
        echo(f"{b}: accuracy {s['accuracy']:.4f} over {s['n']} problems x {s['samples']}"
             + (f" ({s['timeouts']} grading time-outs)" if s["timeouts"] else ""))
        for lv, at_level in summary.get("by_level", {}).get(b, {}).items():
            echo(f"  {b} level {lv}: accuracy {at_level['accuracy']:.4f} over {at_level['n']} problems")
    return summary


def evaluate_sweep(sweep_dir: str | Path, st: EvalSettings,
                   echo: Callable[[str], None] = print) -> list[str]:
    """Evaluate every finished run of a sweep from its checkpoint into RUN_DIR/eval/, then have
    the sweep recompute SWEEP_DIR/results.parquet, whose rows read those scores. Returns the run ids."""
    from aepo.sweep.results import write_results

    runs_dir = Path(sweep_dir) / "runs"
    if not runs_dir.is_dir():
        raise EvalError(f"{sweep_dir} has no runs/ directory")
    finished = []
    for run_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        if (read_result(run_dir) or {}).get("status") == "finished" and (run_dir / CHECKPOINT).is_dir():
            finished.append(run_dir)
    if not finished:
        raise EvalError(f"{sweep_dir}: no finished run with a checkpoint/")
    pool = GradingPool(st.workers, st.grading_timeout_s) if set(st.benchmarks) - {TINYLAB} else None
    try:
        for run_dir in finished:
            echo(f"evaluating {run_dir.name}")
            evaluate_model(run_dir, st, run_dir / EVAL_SUMMARY.parent, pool, echo)
    finally:
        if pool is not None:
            pool.close()
    write_results(Path(sweep_dir))
    echo(f"wrote scores of {len(finished)} runs to {Path(sweep_dir) / 'results.parquet'}")
    return [d.name for d in finished]


def log_wandb(summary: dict[str, Any], mode: str, name: str | None = None,
              out_dir: str | Path | None = None) -> None:
    """Put the flat scores in a W&B run's summary. mode: online | offline | auto (online when
    WANDB_API_KEY is set, else offline) | off. A W&B failure costs only the mirror (a warning):
    the local summary.json is the record."""
    if mode == "off":
        return
    from aepo.runlog import wandb_mode

    try:
        import wandb

        run = wandb.init(project=os.environ.get("WANDB_PROJECT", "aepo"), name=name, job_type="eval",
                         mode=wandb_mode(mode), dir=str(out_dir) if out_dir else None,
                         config={k: v for k, v in summary["settings"].items()})
        run.summary.update(flat_scores(summary))
        run.finish()
    except Exception as e:
        log.warning("W&B summary not written (the local summary.json is): %s: %s", type(e).__name__,
                    " ".join(str(e).split())[:160])
