"""`aepo eval` end to end: grading given responses, generating with a tiny-lab model, sweeps,
and one-line errors. The tiny model is built here (untrained), never downloaded."""

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from aepo.cli import app
from aepo.tasks.tinylab import load_spec, tinylab_items

DATA = Path(os.environ.get("AEPO_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "eval"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared eval data not found at {DATA}")
runner = CliRunner()


def aepo(*args):
    return runner.invoke(app, ["eval", *map(str, args), "--workers", "1"])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from aepo.tasks.tinylab import TinyLabSpec, build_model, build_tokenizer

    # untrained: the eval plumbing is under test here, not the model's skill
    spec = TinyLabSpec(pretrain_steps=0)
    tok = build_tokenizer()
    model = build_model(spec, tok)
    out = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    (out / "tinylab.json").write_text(json.dumps({"name": "test", **asdict(spec)}))
    return out


def read_samples(out):
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


# ---- --responses ---------------------------------------------------------------------------
@needs_data
def test_responses_mode_grades_rows_against_golds_and_writes_samples_and_summary(tmp_path):
    rows = [
        {"benchmark": "gsm8k", "id": 0, "response": "She makes \\boxed{18} dollars."},
        {"benchmark": "gsm8k", "id": "1", "response": "#### 4"},  # gold is 3
        {"benchmark": "amc23", "id": 0, "response": "They meet \\boxed{27} miles from A."},
        {"benchmark": "math500", "id": "test/precalculus/807.json",
         "response": "\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}"},
    ]
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    res = aepo("--responses", tmp_path / "r.jsonl", "--out", tmp_path / "out", "--data-dir", DATA)
    assert res.exit_code == 0, res.output
    samples = read_samples(tmp_path / "out")
    assert [s["correct"] for s in samples] == [True, False, True, True]
    assert set(samples[0]) >= {"benchmark", "id", "response", "extracted", "correct"}
    assert samples[1]["id"] == "1" and samples[1]["extracted"] == "4"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["benchmarks"]["gsm8k"]["accuracy"] == 0.5
    assert summary["benchmarks"]["gsm8k"]["timeouts"] == 0
    assert summary["average"]["accuracy"] == pytest.approx((0.5 + 1 + 1) / 3)


@needs_data
@pytest.mark.parametrize("content, message", [
    ('{"benchmark": "gsm9k", "id": 0, "response": "1"}', "unknown benchmark 'gsm9k'"),
    ('{"benchmark": "gsm8k", "id": 99999, "response": "1"}', "no problem with id '99999'"),
    ('{"benchmark": "gsm8k", "response": "1"}', "needs 'benchmark', 'id' and 'response'"),
    ('{"benchmark": "gsm8k", ', "not valid JSON"),
])
def test_bad_responses_files_fail_with_one_line_error(tmp_path, content, message):
    (tmp_path / "r.jsonl").write_text(content)
    res = aepo("--responses", tmp_path / "r.jsonl", "--out", tmp_path / "out", "--data-dir", DATA)
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_unknown_benchmark_and_missing_data_fail_with_one_line_errors(tmp_path, tiny_model):
    res = aepo("--model", tiny_model, "--benchmarks", "tinylab,gsm9k", "--out", tmp_path)
    assert res.exit_code == 2 and res.stderr.startswith("error: unknown benchmark 'gsm9k'")
    res = aepo("--model", tiny_model, "--benchmarks", "aime24", "--out", tmp_path, "--data-dir", tmp_path)
    assert res.exit_code == 2 and res.stderr.startswith("error: no data file for 'aime24'")
    res = aepo("--model", tmp_path / "nowhere", "--benchmarks", "tinylab", "--out", tmp_path)
    assert res.exit_code == 2 and "neither a model directory" in res.stderr


def test_mode_options_are_checked_before_any_work(tmp_path):
    assert aepo("--out", tmp_path).exit_code == 2
    res = aepo("--model", tmp_path, "--benchmarks", "tinylab", "--out", tmp_path, "--n", "4")
    assert res.exit_code == 2 and "--temperature > 0" in res.stderr


# ---- --model -------------------------------------------------------------------------------
def test_greedy_eval_of_a_tiny_lab_model_scores_its_heldout_set(tmp_path, tiny_model):
    res = aepo("--model", tiny_model, "--benchmarks", "tinylab", "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    s = summary["benchmarks"]["tinylab"]
    heldout = tinylab_items(load_spec(tiny_model), "heldout")
    assert s["n"] == len(heldout) and s["samples"] == 1
    assert 0.0 <= s["accuracy"] <= 1.0 and s["pass@1"] == s["accuracy"]
    samples = read_samples(tmp_path / "out")
    # only new tokens are decoded: at most the tiny lab's 12 characters, no prompt echo
    assert len(samples) == len(heldout) and all(len(x["response"]) <= 12 for x in samples)


def test_sampling_eval_reports_avg_at_k_and_pass_at_k(tmp_path, tiny_model):
    res = aepo("--model", tiny_model, "--benchmarks", "tinylab", "--out", tmp_path / "out",
               "--n", 4, "--temperature", 1.0, "--limit", 3, "--seed", 3)
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "out" / "summary.json").read_text())["benchmarks"]["tinylab"]
    assert s["n"] == 3 and s["samples"] == 4
    assert s["avg@4"] == s["accuracy"] <= s["pass@2"] <= s["pass@4"]


@needs_data
def test_math_benchmarks_run_through_generation_and_the_grading_pool(tmp_path, tiny_model):
    res = aepo("--model", tiny_model, "--benchmarks", "gsm8k,math500", "--limit", 2, "--template", "raw",
               "--max-new-tokens", 3, "--out", tmp_path / "out", "--data-dir", DATA)
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary["benchmarks"]) == {"gsm8k", "math500"}
    assert len(read_samples(tmp_path / "out")) == 4


# ---- --sweep -------------------------------------------------------------------------------
def test_sweep_evaluates_finished_runs_and_merges_scores_into_results(tmp_path, tiny_model):
    sweep = tmp_path / "sweep"
    for run_id, status in [("a", "finished"), ("b", "running")]:
        run = sweep / "runs" / run_id
        shutil.copytree(tiny_model, run / "checkpoint", ignore=shutil.ignore_patterns("tinylab.json"))
        (run / "config.json").write_text(json.dumps({"model_dir": str(tiny_model)}))
        (run / "result.json").write_text(json.dumps({"status": status, "steps_done": 5,
                                                     "final/critic/score/mean": 0.5}))
    # the sweep's record, as `aepo sweep` writes it (aepo.sweep.results.sweep_record)
    (sweep / "sweep.json").write_text(json.dumps({"name": "s", "axes": ["seed"], "runs": [
        {"run_id": r, "method": "grpo", "point": {"seed": 0}, "run_dir": str(sweep / "runs" / r), "steps": 5,
         "entropy_target": None} for r in ("a", "b")]}))
    res = aepo("--sweep", sweep, "--benchmarks", "tinylab", "--limit", 4)
    assert res.exit_code == 0, res.output
    assert (sweep / "runs" / "a" / "eval" / "summary.json").is_file()
    assert not (sweep / "runs" / "b" / "eval").exists()
    df = pd.read_parquet(sweep / "results.parquet").set_index("run_id")  # recomputed by the sweep's one writer
    assert df.loc["a", "final_score"] == 0.5 and df.loc["a", "status"] == "finished"
    assert 0 <= df.loc["a", "eval/tinylab/accuracy"] <= 1
    assert pd.isna(df.loc["b", "eval/tinylab/accuracy"])


def test_the_memory_estimate_of_a_sample_call_matches_a_hand_count():
    from types import SimpleNamespace

    from aepo.embedded.sampler import sample_bytes

    cfg = SimpleNamespace(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, hidden_size=64)
    # KV cache: 2 (k, v) * 2 layers * 3 rows * (5 + 7) positions * 2 kv heads * 16 dims * 4 bytes = 18,432
    # prefill attention: 2 (scores, weights) * 3 rows * 4 heads * 5 * 5 * 4 bytes = 2,400
    assert sample_bytes(cfg, rows=3, prompt_len=5, max_new_tokens=7, element_size=4) == 18432 + 2400


def test_a_batch_too_large_for_free_memory_is_refused_before_any_generation(tmp_path, tiny_model, monkeypatch):
    import aepo.eval.generate as gen
    from aepo.embedded.sampler import sample_bytes
    from aepo.tasks.tinylab import load_spec

    config = json.loads((tiny_model / "config.json").read_text())
    cfg = type("C", (), config)
    # the tiny lab's held-out prompts are '<bos>NN=' (4 tokens) and get 12 new tokens; leave room for 5 rows
    monkeypatch.setattr(gen, "free_bytes", lambda device: sample_bytes(cfg, 5, 4, 12, 4) + 1)
    calls = []
    monkeypatch.setattr(gen, "generate_embedded", lambda *a, **k: calls.append(a))
    res = aepo("--model", tiny_model, "--benchmarks", "tinylab", "--batch-size", 8, "--out", tmp_path / "out")
    assert res.exit_code == 2 and not calls and not (tmp_path / "out").exists()
    line = res.output.strip()
    assert "\n" not in line and "--batch-size 8" in line and "use --batch-size 5 or less" in line, line
    assert len(tinylab_items(load_spec(tiny_model), "heldout")) >= 8
