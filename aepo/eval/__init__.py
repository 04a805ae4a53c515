"""Math benchmark evaluation (`aepo eval`): loaders, answer grading, generation, scores.

- `benchmarks`: each benchmark file's fields -> Problem(id, problem, gold)
- `grading`: answer extraction, math-verify comparison, a time-limited process pool;
  `grading.grade(response, gold)` is also the trainer's reward for math prompts
- `generate`: model loading and generation (embedded sampler; vLLM when installed)
- `metrics`: accuracy / avg@K and unbiased pass@k
- `runner`: the glue behind the CLI (samples.jsonl, summary.json, sweep results)

Heavy dependencies (torch models, math-verify, pandas) are imported where used.
"""
