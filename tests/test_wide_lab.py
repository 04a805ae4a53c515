"""The wide lab (`tiny-wide`, issue 16): three-digit sums with hundreds of held-out prompts."""

from __future__ import annotations

import pytest
import torch

from aepo.tasks import tinylab


def test_the_wide_lab_holds_out_every_third_sum_from_100_to_999():
    spec = tinylab.SPECS["tiny-wide"]
    train, heldout = tinylab.tinylab_items(spec, "train"), tinylab.tinylab_items(spec, "heldout")
    assert (len(train), len(heldout)) == (600, 300)
    assert heldout[0] == {"problem": "102=", "answer": "102"} and heldout[-1]["answer"] == "999"
    assert not {r["answer"] for r in train} & {r["answer"] for r in heldout}


@pytest.mark.parametrize("response, right", [
    ("345+309", 1.0),   # 345 + 309 = 654
    ("000+654", 1.0),   # zero-padded, one addend zero
    ("654+0", 1.0),     # any width up to 4 digits is accepted, as in the tiny lab
    ("345+308", 0.0),   # off by one
    ("345+309+0", 0.0),  # three addends
    ("345-309", 0.0),
    ("", 0.0),
])
def test_a_wide_lab_answer_is_right_when_its_two_addends_sum_to_the_prompt(response, right):
    assert tinylab.reward("654", response) == right


def test_the_shipped_wide_start_samples_a_right_answer_about_one_time_in_seven():
    """The start RL begins from: 13-15% sampled accuracy when it was built (tinylab.SPECS); a
    start far outside 5-30% would make sweeps/c3.yaml a different experiment."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = tinylab.tiny_model_path("tiny-wide", log=lambda *_: None)
    tok, model = AutoTokenizer.from_pretrained(d), AutoModelForCausalLM.from_pretrained(d).eval()
    items = tinylab.tinylab_items(tinylab.load_spec(d), "heldout")
    enc = tok([it["problem"] for it in items], padding=True, return_tensors="pt")
    torch.manual_seed(0)
    with torch.no_grad():
        out = model.generate(**enc, do_sample=True, max_new_tokens=10, num_return_sequences=4,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    texts = tok.batch_decode(out[:, enc.input_ids.shape[1]:], skip_special_tokens=True)
    acc = sum(tinylab.reward(items[i // 4]["answer"], t) for i, t in enumerate(texts)) / len(texts)
    assert 0.05 < acc < 0.30


def test_aepo_eval_scores_the_named_wide_start_on_its_300_held_out_sums(tmp_path):
    import json

    from typer.testing import CliRunner

    from aepo.cli import app

    res = CliRunner().invoke(app, ["eval", "--model", "tiny-wide", "--benchmarks", "tinylab", "--out", str(tmp_path),
                                   "--backend", "embedded", "--workers", "1"])
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "summary.json").read_text())["benchmarks"]["tinylab"]
    assert s["n"] == 300 and 0.3 < s["accuracy"] < 0.8  # greedy from the start: ~0.5 when it was built
