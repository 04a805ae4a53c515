"""Evaluate a model, a run, a whole sweep, or ready-made responses on math benchmarks."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from aepo.cli.common import fail, one_line_errors

BENCHMARK_HELP = ("Comma-separated: aime24, amc23, college_math, gsm8k, math500, math, minerva_math, "
                  "olympiadbench, tinylab (the tiny lab's held-out set; needs a tiny-lab model), arith (the "
                  "arithmetic task's 580 held-out prompts, 32 tokens; with --template chat, as training asks them).")


def eval_command(
    model: Annotated[Optional[Path], typer.Option(help="HF model directory, training run directory (its "
                                                  "checkpoint/ is loaded) or a named start: tiny, tiny-weak, "
                                                  "tiny-wide, smollm2-135m.")] = None,
    responses: Annotated[Optional[Path], typer.Option(help="Only grade this JSONL of responses made "
                                                      "elsewhere (rows: benchmark, id, response); "
                                                      "tinylab rows need --model for their golds.")] = None,
    sweep: Annotated[Optional[Path], typer.Option(help="Evaluate every finished run under SWEEP/runs/ and "
                                                  "add the scores to SWEEP/results.parquet.")] = None,
    benchmarks: Annotated[Optional[str], typer.Option(help=BENCHMARK_HELP)] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output directory (samples.jsonl, summary.json). "
                                                "With --sweep: each RUN_DIR/eval.")] = None,
    data_dir: Annotated[Optional[str], typer.Option(help="Directory of <benchmark>.jsonl/.parquet files, or "
                                                    "hf:OWNER/REPO. Default: $AEPO_DATA_DIR.")] = None,
    n: Annotated[int, typer.Option(help="Samples per problem K (avg@K, pass@k).")] = 1,
    temperature: Annotated[float, typer.Option(help="Sampling temperature; 0 = greedy.")] = 0.0,
    max_new_tokens: Annotated[int, typer.Option(help="Response length cap in tokens (fixed for the labs: tinylab 12, arith 32).")] = 2048,
    template: Annotated[str, typer.Option(help="Prompt template: qwen-math | plain | raw | chat (the plain math "
                                          "prompt as a user turn of the model's own chat template: instruct "
                                          "models), or a literal string with {problem}. The tiny lab always uses "
                                          "raw.")] = "qwen-math",
    backend: Annotated[str, typer.Option(help="auto (vLLM if installed and a GPU is present) | embedded | vllm.")] = "auto",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N (embedded backend).")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Prompts per generation batch (embedded backend); refused before any "
                                                  "generation if its KV cache would not fit in free memory.")] = 32,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    limit: Annotated[Optional[int], typer.Option(help="Evaluate only the first N problems of each benchmark.")] = None,
    workers: Annotated[int, typer.Option(help="Grading processes.")] = os.cpu_count() or 2,
    grading_timeout: Annotated[float, typer.Option(help="Seconds per answer before it counts as wrong.")] = 5.0,
    wandb: Annotated[str, typer.Option(help="W&B summary: off | auto (online if WANDB_API_KEY is set, "
                                       "else offline) | online | offline.")] = "off",
) -> None:
    """Score a model on math benchmarks (accuracy, avg@K, pass@k), or grade given responses."""
    if (sweep is not None) + (model is not None or responses is not None) != 1:
        fail("give --model, --responses (with --model only for tinylab golds), or --sweep")
    if sweep is None and out is None:
        fail("--out is required")
    if (model or sweep) and not benchmarks:
        fail("--benchmarks is required with --model and --sweep")
    if n < 1 or (n > 1 and temperature <= 0):
        fail("--n must be >= 1, and --n > 1 needs --temperature > 0")
    if not (math.isfinite(temperature) and temperature >= 0):
        fail(f"--temperature must be a finite number >= 0, got {temperature}")
    if limit is not None and limit < 1:
        fail(f"--limit must be >= 1 (leave it out to evaluate every problem), got {limit}")
    if not (math.isfinite(grading_timeout) and grading_timeout > 0):
        fail(f"--grading-timeout must be a number of seconds > 0, got {grading_timeout}")
    for name, value in (("--max-new-tokens", max_new_tokens), ("--batch-size", batch_size), ("--workers", workers)):
        if value < 1:
            fail(f"{name} must be >= 1, got {value}")
    if not 0 <= seed <= 2**31 - 1:
        fail(f"--seed must be in [0, 2**31 - 1], got {seed}")
    if backend not in ("auto", "embedded", "vllm") or wandb not in ("off", "auto", "online", "offline"):
        fail(f"unknown --backend '{backend}' or --wandb '{wandb}'")

    from aepo.eval.benchmarks import NAMES
    from aepo.eval.runner import EvalSettings, evaluate_model, evaluate_responses, evaluate_sweep, log_wandb

    names = [b.strip() for b in (benchmarks or "").split(",") if b.strip()]
    unknown = [b for b in names if b not in NAMES]
    if unknown:
        fail(f"unknown benchmark '{unknown[0]}' (known: {', '.join(NAMES)})")
    st = EvalSettings(benchmarks=names, data_dir=data_dir or os.environ.get("AEPO_DATA_DIR"), n=n,
                      temperature=temperature, max_new_tokens=max_new_tokens, template=template,
                      backend=backend, device=device, batch_size=batch_size, seed=seed, limit=limit,
                      workers=workers, grading_timeout_s=grading_timeout)
    with one_line_errors("aepo eval"):
        if model is not None and not model.exists():
            from aepo.tasks.models import named_start_dir

            model = named_start_dir(str(model), log=lambda m: typer.echo(m, err=True)) or model  # tiny, smollm2-135m
        from aepo.rundir import output_dir

        with output_dir(out):  # a file, a path under a file, or no write access: said before any work
            if sweep is not None:
                evaluate_sweep(sweep, st, echo=typer.echo)
                return
            if responses is not None:
                if not responses.is_file():
                    fail(f"no responses file {responses}")
                model_dir = None
                if model is not None:
                    from aepo.rundir import model_dir_of

                    model_dir = model_dir_of(model)
                summary = evaluate_responses(responses, st, out, model_dir, echo=typer.echo)
            else:
                summary = evaluate_model(model, st, out, echo=typer.echo)
            typer.echo(f"average accuracy {summary['average'].get('accuracy', float('nan')):.4f}; wrote {out}")
        log_wandb(summary, wandb, name=f"eval-{Path(responses or model).name}", out_dir=out)
