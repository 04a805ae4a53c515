"""Benchmark loaders: each maps its file's own fields to `Problem(id, problem, gold)`.

Files are looked up as `<data_dir>/<name>.jsonl` (or `.parquet`); `data_dir` may also be
`hf:OWNER/REPO`, a Hugging Face dataset repo laid out the same way (needs `datasets`).
Field mapping (see shared/data/SOURCES.md):

| benchmark     | problem    | gold                           | id                 |
|---------------|------------|--------------------------------|--------------------|
| aime24        | problem    | answer                         | id                 |
| amc23         | problem    | answer (float 27.0 -> "27")    | id                 |
| college_math  | question   | answer                         | row number         |
| gsm8k         | question   | text after '####' in answer    | idx                |
| math500       | problem    | answer                         | unique_id          |
| math          | problem    | last \\boxed{} of solution      | row number         |
| minerva_math  | problem    | last \\boxed{} of solution      | idx                |
| olympiadbench | question   | final_answer[0]                | id                 |
| tinylab       | raw prompt | N (graded by the tiny lab)     | row number         |
| arith         | question   | the number (generated held-out)| row number         |

`tinylab` and `arith` are generated, not read: the held-out prompts their training runs validate on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from aepo.errors import UserError
from aepo.rundir import read_json, read_jsonl
from aepo.tasks.grading import last_boxed

TINYLAB = "tinylab"
ARITH = "arith"  # aepo/tasks/arith.py's held-out split


class BenchmarkError(UserError):
    """Unknown benchmark, missing file or malformed row; the message is one line."""


@dataclass
class Problem:
    id: str  # the benchmark's own unique field, else the 0-based row number; always a string
    problem: str
    gold: str
    row: dict[str, Any] = field(default_factory=dict, repr=False)  # the raw row


def _field(key: str) -> Callable[[dict], Any]:
    return lambda row: row[key]


def _whole_float(row: dict) -> str:
    x = row["answer"]
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _after_hashes(row: dict) -> str:
    text = row["answer"]
    if "####" not in text:
        raise KeyError("'####' in answer")
    return text.split("####")[-1].strip().replace(",", "")


def _boxed_solution(row: dict) -> str:
    gold = last_boxed(row["solution"])
    if gold is None:
        raise KeyError("\\boxed{} in solution")
    return gold


def _first_final_answer(row: dict) -> str:
    answers = row["final_answer"]
    if not isinstance(answers, list) or not answers:
        raise KeyError("non-empty list final_answer")
    return answers[0]


@dataclass(frozen=True)
class Spec:
    problem_key: str
    gold: Callable[[dict], Any]
    id_key: str | None  # None: the row number


SPECS: dict[str, Spec] = {
    "aime24": Spec("problem", _field("answer"), "id"),
    "amc23": Spec("problem", _whole_float, "id"),
    "college_math": Spec("question", _field("answer"), None),
    "gsm8k": Spec("question", _after_hashes, "idx"),
    "math500": Spec("problem", _field("answer"), "unique_id"),
    "math": Spec("problem", _boxed_solution, None),
    "minerva_math": Spec("problem", _boxed_solution, "idx"),
    "olympiadbench": Spec("question", _first_final_answer, "id"),
}
NAMES = (*SPECS, TINYLAB, ARITH)


def default_data_dir() -> str | None:
    return os.environ.get("AEPO_DATA_DIR")


def _read_rows(name: str, data_dir: str | Path) -> tuple[str, list[dict]]:
    """(where, rows) of a benchmark file in a local dir or an `hf:` dataset repo."""
    data_dir = str(data_dir)
    if data_dir.startswith("hf:"):
        return _read_hub(name, data_dir[3:])
    for suffix in (".jsonl", ".parquet"):
        path = Path(data_dir) / f"{name}{suffix}"
        if path.is_file():
            break
    else:
        raise BenchmarkError(f"no data file for '{name}': expected {Path(data_dir) / name}.jsonl or .parquet")
    if suffix == ".parquet":
        import pandas as pd

        return str(path), pd.read_parquet(path).to_dict("records")
    return str(path), read_jsonl(path)


def _read_hub(name: str, repo: str) -> tuple[str, list[dict]]:
    try:
        import datasets
    except ImportError:
        raise BenchmarkError("hub datasets need the `datasets` package: pip install datasets") from None
    for suffix in (".jsonl", ".parquet"):
        try:
            ds = datasets.load_dataset(repo, data_files=f"{name}{suffix}", split="train")
            return f"hf:{repo}/{name}{suffix}", [dict(r) for r in ds]
        except FileNotFoundError:
            continue
        except Exception as e:  # network, auth, format: keep the message on one line
            raise BenchmarkError(f"hf:{repo}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    raise BenchmarkError(f"hf:{repo} has no {name}.jsonl or {name}.parquet")


def load_benchmark(name: str, data_dir: str | Path | None = None, model_dir: str | Path | None = None,
                   limit: int | None = None) -> list[Problem]:
    """The problems of one benchmark (first `limit` if given). `tinylab` needs `model_dir`."""
    if name == TINYLAB:
        problems = _tinylab(model_dir)
    elif name == ARITH:
        from aepo.tasks import arith

        problems = [Problem(str(i), it["problem"], it["answer"], it) for i, it in enumerate(arith.items("heldout"))]
    elif name not in SPECS:
        raise BenchmarkError(f"unknown benchmark '{name}' (known: {', '.join(NAMES)})")
    else:
        data_dir = data_dir or default_data_dir()
        if data_dir is None:
            raise BenchmarkError("no data directory: pass --data-dir or set AEPO_DATA_DIR")
        where, rows = _read_rows(name, data_dir)
        spec = SPECS[name]
        problems = []
        for i, row in enumerate(rows):
            try:
                pid = str(i if spec.id_key is None else row[spec.id_key])
                problems.append(Problem(pid, str(row[spec.problem_key]), str(spec.gold(row)), row))
            except (KeyError, TypeError, AttributeError) as e:
                raise BenchmarkError(f"{where}: row {i}: missing or malformed field {e}") from None
        ids = [p.id for p in problems]
        if len(set(ids)) != len(ids):
            raise BenchmarkError(f"{where}: duplicate ids in field '{spec.id_key}'")
    return problems[:limit] if limit else problems


def tinylab_spec_for(model_dir: str | Path):
    """The TinyLabSpec of a tiny-lab model dir (its tinylab.json), or of a run's checkpoint (an
    embedded `RUN/checkpoint`, a verl `RUN/checkpoints/global_step_N/actor/huggingface`) whose
    run's config.json names the tiny-lab model it started from; None otherwise."""
    from aepo.tasks.tinylab import load_spec

    model_dir = Path(model_dir)
    spec = load_spec(model_dir)
    for run_dir in list(model_dir.parents)[:4] if spec is None else []:
        record = read_json(run_dir / "config.json")
        start = record.get("model_dir") if isinstance(record, dict) else None
        if start:
            return load_spec(start)
    return spec


def _tinylab(model_dir: str | Path | None) -> list[Problem]:
    from aepo.tasks.tinylab import tinylab_items

    spec = tinylab_spec_for(model_dir) if model_dir else None
    if spec is None:
        raise BenchmarkError("benchmark 'tinylab' needs a tiny-lab model (a directory with tinylab.json)")
    items = tinylab_items(spec, "heldout")  # [{'problem', 'answer'}]
    return [Problem(str(i), it["problem"], it["answer"], it) for i, it in enumerate(items)]
