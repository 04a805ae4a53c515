"""A real pretrained instruct model through `aepo train` and `aepo eval` (issue 15): SmolLM2-135M-
Instruct from its Python package, converted once into a fresh cache, 2 RL steps (2 prompts x 2
samples x 16 tokens) with its chat template, and an eval of 2 GSM8K problems."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aepo.cli import app
from conftest import SHARED_DATA

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("gguf") is None,
                                 reason="needs the smollm2 extra (pip install -e '.[smollm2]')")]


@pytest.fixture(scope="module")
def smollm2_dir(tmp_path_factory):
    """The converted model in a fresh cache (fetched from the package index and converted: ~45 s)."""
    from aepo.tasks import smollm2

    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("AEPO_CACHE")
    os.environ["AEPO_CACHE"] = str(cache)
    try:
        path = smollm2.model_path(log=lambda *a: None)
    finally:
        if old is None:
            os.environ.pop("AEPO_CACHE")
        else:
            os.environ["AEPO_CACHE"] = old
    return path


def test_the_smollm2_package_converts_to_a_checksummed_model_directory_with_a_chat_template(smollm2_dir):
    from transformers import AutoTokenizer

    record = json.loads((smollm2_dir / "aepo_model.json").read_text())
    assert record["wheel_sha256"] == "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
    # dequantization is deterministic arithmetic: the same float32 bytes on every machine
    assert record["weights_sha256"] == "a672150fb4f99d7c8f4168cecdd464069c0ef3a37d8113f22ddb9d48031d03cd"
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    assert tok.chat_template and tok.eos_token == "<|im_end|>"


def test_two_rl_steps_and_an_eval_run_on_the_real_model_with_its_chat_template(tmp_path, smollm2_dir):
    run = tmp_path / "run"
    res = CliRunner().invoke(app, [
        "train", "--method", "aepo", "--model", str(smollm2_dir), "--steps", "2", "--out", str(run), "--wandb", "off",
        "--set", "data.train_file=arith", "--set", "rollout.prompts_per_step=2", "--set", "rollout.group_size=2",
        "--set", "rollout.max_new_tokens=16", "--set", "optim.micro_batch_rows=2", "--set", "eval_every=2",
        "--set", "eval_prompts=2", "--set", "eval_samples=1", "--set", "threads=2"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(0 < r["actor/entropy"] < 12 for r in rows)
    assert 0 <= rows[-1]["val/arith/mean@1"] <= 1  # held-out arithmetic, graded by math-verify
    config = json.loads((run / "config.json").read_text())
    assert config["chat_template"] is True  # an instruct tokenizer: prompts went in as a chat turn
    res = CliRunner().invoke(app, ["eval", "--model", str(run), "--benchmarks", "gsm8k", "--limit", "2",
                                   "--template", "chat", "--max-new-tokens", "16", "--out", str(tmp_path / "ev"),
                                   "--data-dir", str(SHARED_DATA / "eval"), "--backend", "embedded", "--workers", "1"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["benchmarks"]["gsm8k"]["n"] == 2 and 0 <= summary["benchmarks"]["gsm8k"]["accuracy"] <= 1
