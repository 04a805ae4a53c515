"""`aepo eval` against bad input (issue 13): one line on stderr, exit 2, no traceback, and the
outputs of an earlier evaluation in --out keep their bytes. The grader holds its time limit on
adversarial responses of up to 1 MB, and text a model wrote (lone surrogates) never crashes."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aepo.cli import app
from conftest import SHARED_DATA, one_line_error, snapshot

GSM8K = SHARED_DATA / "eval"
ROW = {"benchmark": "gsm8k", "id": "0", "response": "\\boxed{18}"}


def previous_outputs(tmp: Path) -> Path:
    """An earlier evaluation's outputs in --out (they must survive a failing one)."""
    out = tmp / "out"
    out.mkdir()
    (out / "samples.jsonl").write_text(json.dumps(ROW) + "\n")
    (out / "summary.json").write_text('{"benchmarks": {}, "average": {}}')
    return out


CASES = [
    # responses files
    ("responses-not-utf8", {"r.jsonl": b'{"benchmark": "gsm8k", "id": "0", "response": "\xff"}\n'}, [], "not UTF-8"),
    ("responses-bad-json", {"r.jsonl": json.dumps(ROW) + "\n{oops\n"}, [], "r.jsonl:2: not valid JSON"),
    ("responses-not-an-object", {"r.jsonl": "[1]\n"}, [], "r.jsonl:1: expected a JSON object"),
    ("responses-missing-key", {"r.jsonl": '{"benchmark": "gsm8k", "response": "1"}\n'}, [], "needs 'benchmark', 'id'"),
    ("responses-empty", {"r.jsonl": "\n"}, [], "no responses"),
    ("responses-unknown-benchmark", {"r.jsonl": '{"benchmark": "gsm9k", "id": "0", "response": "1"}\n'}, [],
     "unknown benchmark 'gsm9k'"),
    ("responses-unknown-id", {"r.jsonl": '{"benchmark": "gsm8k", "id": "zz", "response": "1"}\n'}, [],
     "no problem with id 'zz'"),
    ("responses-missing", {}, ["--responses", "{tmp}/none.jsonl"], "no responses file"),
    ("responses-a-directory", {}, ["--responses", "{tmp}"], "no responses file"),
    # options
    ("limit-zero", {"r.jsonl": json.dumps(ROW)}, ["--limit", "0"], "--limit must be >= 1"),
    ("limit-negative", {"r.jsonl": json.dumps(ROW)}, ["--limit", "-1"], "--limit must be >= 1"),
    ("timeout-negative", {"r.jsonl": json.dumps(ROW)}, ["--grading-timeout", "-1"], "--grading-timeout"),
    ("timeout-nan", {"r.jsonl": json.dumps(ROW)}, ["--grading-timeout", "nan"], "--grading-timeout"),
    ("temperature-negative", {"r.jsonl": json.dumps(ROW)}, ["--temperature", "-0.5"], "--temperature"),
    ("temperature-inf", {"r.jsonl": json.dumps(ROW)}, ["--temperature", "inf"], "--temperature"),
    ("n-zero", {"r.jsonl": json.dumps(ROW)}, ["--n", "0"], "--n must be >= 1"),
    ("n-greedy", {"r.jsonl": json.dumps(ROW)}, ["--n", "4"], "needs --temperature > 0"),
    ("batch-size-zero", {"r.jsonl": json.dumps(ROW)}, ["--batch-size", "0"], "--batch-size must be >= 1"),
    ("workers-zero", {"r.jsonl": json.dumps(ROW)}, ["--workers", "0"], "--workers must be >= 1"),
    ("max-new-tokens-zero", {"r.jsonl": json.dumps(ROW)}, ["--max-new-tokens", "0"], "--max-new-tokens"),
    ("seed-negative", {"r.jsonl": json.dumps(ROW)}, ["--seed", "-1"], "--seed must be in"),
    ("backend-unknown", {"r.jsonl": json.dumps(ROW)}, ["--backend", "tpu"], "unknown --backend"),
    ("out-is-a-file", {"r.jsonl": json.dumps(ROW), "f": "x"}, ["--out", "{tmp}/f"], "exists and is not a directory"),
    ("out-under-a-file", {"r.jsonl": json.dumps(ROW), "f": "x"}, ["--out", "{tmp}/f/o"], "lies under a file"),
    ("out-not-writable", {"r.jsonl": json.dumps(ROW)}, ["--out", "/sys/aepo_eval"], "cannot create /sys/aepo_eval"),
    ("data-dir-without-the-file", {"r.jsonl": json.dumps(ROW)}, ["--data-dir", "{tmp}"], "no data file for 'gsm8k'"),
    ("benchmark-file-not-utf8", {"r.jsonl": json.dumps(ROW), "d/gsm8k.jsonl": b'{"question": "\xff"}\n'},
     ["--data-dir", "{tmp}/d"], "not UTF-8"),
    # models and sweeps
    ("model-not-a-model", {"m/x": "1"}, ["--model", "{tmp}/m", "--benchmarks", "tinylab"], "neither a model"),
    ("model-missing", {}, ["--model", "{tmp}/nope", "--benchmarks", "tinylab"], "neither a model"),
    ("model-run-without-checkpoint", {"run/config.json": json.dumps({"config": {}, "versions": {}})},
     ["--model", "{tmp}/run", "--benchmarks", "tinylab"], "neither a model"),
    ("model-without-benchmarks", {}, ["--model", "{tmp}"], "--benchmarks is required"),
    ("benchmark-unknown", {}, ["--model", "{tmp}", "--benchmarks", "gsm9k"], "unknown benchmark 'gsm9k'"),
    ("device-unknown", {}, ["--model", "{tiny}", "--benchmarks", "tinylab", "--device", "gpu"], "unknown device 'gpu'"),
    ("sweep-without-runs", {}, ["--sweep", "{tmp}", "--benchmarks", "tinylab"], "has no runs/ directory"),
    ("sweep-no-finished-run", {"runs/a/result.json": '{"status": "failed"}'}, ["--sweep", "{tmp}", "--benchmarks",
                                                                             "tinylab"], "no finished run"),
    ("nothing-to-do", {}, [], "give --model, --responses"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_to_eval_is_one_line_and_keeps_earlier_outputs(tmp_path, tiny_model_dir, case):
    _, files, args, match = case
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    out = previous_outputs(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)).replace("{tiny}", str(tiny_model_dir)) for a in args]
    if "r.jsonl" in files and "--responses" not in args:
        args += ["--responses", str(tmp_path / "r.jsonl")]
    if "--out" not in args and "--sweep" not in args:
        args += ["--out", str(out)]
    if "--data-dir" not in args:
        args += ["--data-dir", str(GSM8K)]
    before = snapshot(tmp_path)
    res = CliRunner().invoke(app, ["eval", *args])
    one_line_error(res, before, match)


def test_a_response_with_a_lone_surrogate_is_graded_and_written_whole(tmp_path):
    # issue 13.7: such a response crashed after grading and left samples.jsonl empty beside the old summary
    out = previous_outputs(tmp_path)
    rows = [dict(ROW, response="\ud800 the answer is \\boxed{18}"), dict(ROW, id="1", response="\udfff")]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = CliRunner().invoke(app, ["eval", "--responses", str(tmp_path / "r.jsonl"), "--out", str(out),
                                   "--data-dir", str(GSM8K), "--workers", "1"])
    assert res.exit_code == 0, res.output
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["response"] for s in samples] == [r["response"] for r in rows]
    assert json.loads((out / "summary.json").read_text())["benchmarks"]["gsm8k"]["samples"] == 1


@pytest.mark.slow
def test_the_grader_holds_its_time_limit_on_adversarial_responses_of_up_to_a_megabyte():
    """Issue 13.1: unbalanced \\boxed{ took 32.6 s under a 2 s limit (quadratic extraction), and the
    parent extracted a killed worker's answer again with no limit at all."""
    from aepo.tasks.grading import GradingPool, extract_answer

    mb = 1 << 20
    attacks = ["\\boxed{" * (mb // 7), "{" * mb, "}" * mb, "\\boxed{" + "{" * (mb - 8),
               "\\boxed{" + "\\frac{1}{" * (mb // 9), "the answer is " + "9" * (mb - 20), "1," * (mb // 2),
               "\\boxed{" + "x^" * 400 + "}"]
    for text in attacks:  # extraction alone is linear: well under the limit in this process
        t0 = time.perf_counter()
        extract_answer(text)
        assert time.perf_counter() - t0 < 2.0
    limit = 2.0
    with GradingPool(workers=2, timeout_s=limit) as pool:
        t0 = time.perf_counter()
        graded = pool.grade_many([(text, "18") for text in attacks])
        wall = time.perf_counter() - t0
    assert [g.correct for g in graded] == [False] * len(attacks)
    # 2 workers: at most ceil(8 / 2) answers in a row each, each within the limit plus a respawn
    assert wall < (len(attacks) / 2) * (limit + 3.0), wall


@pytest.mark.parametrize("args, match", [
    (["--responses", "{tmp}/none.jsonl"], "no responses file"),
    (["--model", "{tmp}/nope", "--benchmarks", "tinylab"], "neither a model"),
])
def test_a_refused_eval_leaves_no_empty_output_directory_behind(tmp_path, args, match):
    out = tmp_path / "new" / "out"
    res = CliRunner().invoke(app, ["eval", *[a.replace("{tmp}", str(tmp_path)) for a in args], "--out", str(out),
                                   "--data-dir", str(GSM8K)])
    one_line_error(res, {}, match)
    assert not (tmp_path / "new").exists()
