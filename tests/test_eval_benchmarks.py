"""Benchmark loaders map each file's own fields to (id, problem, gold)."""

import json
import os
from pathlib import Path

import pytest

from aepo.errors import UserError
from aepo.eval.benchmarks import BenchmarkError, load_benchmark

DATA = Path(os.environ.get("AEPO_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "eval"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared eval data not found at {DATA}")

ROWS = {"aime24": 30, "amc23": 40, "college_math": 2818, "gsm8k": 1319, "math500": 500,
        "math": 5000, "minerva_math": 272, "olympiadbench": 675}


@needs_data
@pytest.mark.parametrize("name", list(ROWS))
def test_each_benchmark_loads_all_rows_with_unique_string_ids(name):
    problems = load_benchmark(name, DATA)
    assert len(problems) == ROWS[name]
    assert len({p.id for p in problems}) == len(problems)
    assert all(isinstance(p.id, str) and p.problem and p.gold for p in problems)


@needs_data
def test_golds_and_ids_come_from_each_files_own_fields():
    assert load_benchmark("amc23", DATA)[0].gold == "27"  # JSON float 27.0
    gsm = load_benchmark("gsm8k", DATA)
    assert gsm[0].gold == "18" and gsm[0].id == "0"  # text after '####', id from idx
    assert load_benchmark("math500", DATA)[0].id.startswith("test/")  # unique_id
    assert load_benchmark("math", DATA)[0].gold == "2"  # last \boxed{} of the solution
    assert load_benchmark("olympiadbench", DATA)[1].gold == "$\\frac{1}{2 n+2}$"  # final_answer[0]
    assert load_benchmark("college_math", DATA)[5].id == "5"  # row number
    assert load_benchmark("aime24", DATA)[0].id == "60"


@needs_data
def test_limit_keeps_the_first_problems():
    assert [p.id for p in load_benchmark("gsm8k", DATA, limit=3)] == ["0", "1", "2"]


def test_unknown_benchmark_is_a_one_line_error():
    with pytest.raises(BenchmarkError, match="unknown benchmark 'gsm9k'"):
        load_benchmark("gsm9k", "/nonexistent")


def test_missing_data_file_is_a_one_line_error(tmp_path):
    with pytest.raises(BenchmarkError, match="no data file for 'aime24'"):
        load_benchmark("aime24", tmp_path)


@pytest.mark.parametrize("line, match", [
    ('{"question": "q", "answer": "no hashes", "idx": 0}', "malformed field"),
    ('{"answer": "#### 3", "idx": 0}', "missing or malformed field 'question'"),
    ('{"question": "q", "answer": "#### 3"', "not valid JSON"),
])
def test_malformed_row_is_a_one_line_error_naming_the_row(tmp_path, line, match):
    (tmp_path / "gsm8k.jsonl").write_text(json.dumps({"question": "ok", "answer": "#### 1", "idx": 9}) + "\n" + line + "\n")
    with pytest.raises(UserError, match=match) as e:  # BenchmarkError, or the JSONL reader's own
        load_benchmark("gsm8k", tmp_path)
    assert "\n" not in str(e.value)


def test_parquet_files_load_like_jsonl(tmp_path):
    import pandas as pd

    pd.DataFrame({"problem": ["1+1?"], "answer": ["2"], "unique_id": ["u1"]}).to_parquet(tmp_path / "math500.parquet")
    (p,) = load_benchmark("math500", tmp_path)
    assert (p.id, p.problem, p.gold) == ("u1", "1+1?", "2")


def test_tinylab_needs_a_tiny_lab_model(tmp_path):
    with pytest.raises(BenchmarkError, match="tiny-lab model"):
        load_benchmark("tinylab", model_dir=tmp_path)
