"""Prompts of instruct models as a chat turn (issue 15): data.chat_template auto | always | never in
training and validation, `aepo eval --template chat`; models without a chat template refuse them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from aepo.cli import app
from aepo.config import ConfigError
from aepo.tasks.prompts import prompt_texts, uses_chat
from conftest import SHARED_DATA, one_line_error, snapshot

TEMPLATE = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}" \
           "{% if add_generation_prompt %}<assistant>{% endif %}"


@pytest.fixture
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)  # the tiny lab's character tokenizer: no chat template


def test_each_prompt_becomes_one_user_turn_with_the_generation_prompt(tok):
    tok.chat_template = TEMPLATE
    assert prompt_texts(tok, "Q: {problem}", ["1+1", "2+2"], chat=True) == [
        "<user>Q: 1+1</user><assistant>", "<user>Q: 2+2</user><assistant>"]
    assert prompt_texts(tok, "Q: {problem}", ["1+1"], chat=False) == ["Q: 1+1"]


def test_auto_follows_the_tokenizer_and_always_refuses_one_without_a_template(tok):
    assert uses_chat(tok, "auto") is False and uses_chat(tok, "never") is False
    with pytest.raises(ConfigError, match="has no chat template"):
        uses_chat(tok, "always")
    tok.chat_template = TEMPLATE
    assert uses_chat(tok, "auto") is True and uses_chat(tok, "always") is True and uses_chat(tok, "never") is False


def test_chat_prompts_for_a_model_without_a_template_are_one_line_in_train_and_eval(tmp_path, tiny_model_dir):
    before = snapshot(tmp_path)
    res = CliRunner().invoke(app, ["train", "--steps", "1", "--out", str(tmp_path / "r"), "--wandb", "off",
                                   "--set", "data.chat_template=always"])
    one_line_error(res, before, "has no chat template")
    res = CliRunner().invoke(app, ["eval", "--model", str(tiny_model_dir), "--benchmarks", "gsm8k", "--limit", "1",
                                   "--template", "chat", "--out", str(tmp_path / "ev"), "--data-dir",
                                   str(SHARED_DATA / "eval"), "--backend", "embedded", "--workers", "1"])
    one_line_error(res, before, "has no chat template")


def test_verl_refuses_prompts_without_a_chat_template():
    from aepo.config import RunConfig

    with pytest.raises(ConfigError, match="verl always builds its prompts with a chat template"):
        RunConfig().with_overrides({"backend": "verl", "data.chat_template": "never"}).validate()


def test_aepo_eval_asks_the_arith_benchmark_exactly_as_its_training_runs_validate_on_it(tok):
    from aepo.config import DataConfig
    from aepo.eval.benchmarks import load_benchmark
    from aepo.eval.runner import prompts_of
    from aepo.tasks import arith
    from aepo.tasks.prompts import load_task

    tok.chat_template = TEMPLATE
    problems = load_benchmark("arith")
    task = load_task(DataConfig(train_file="arith"), Path("."))
    assert [(p.problem, p.gold) for p in problems] == [(it["problem"], it["answer"]) for it in task.heldout]
    trained = prompt_texts(tok, task.template, [it["problem"] for it in task.heldout], chat=True)
    assert prompts_of("arith", "chat", tok, problems) == trained
    assert trained[0] == f"<user>{arith.items('heldout')[0]['problem']}</user><assistant>"  # no second instruction
