"""The lean decoder forward (the fast path) against Hugging Face's forward (the slow reference),
for a Qwen2 (the tiny lab) and a Llama (SmolLM2's architecture: no attention biases, grouped-query
heads), and the once-padded prompt table against per-step padding."""

import pytest
import torch

import aepo.embedded.sampler as sampler_mod
from aepo.embedded.lean import attention_mask, lean_model
from aepo.embedded.sampler import positions_from_mask, sample
from aepo.embedded.trainer import left_pad, pick_rows


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def tiny(request, tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    if request.param == "qwen2":
        return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), tok
    torch.manual_seed(0)  # a small random Llama on the tiny lab's tokenizer
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=64,
                      rope_theta=100000.0, tie_word_embeddings=True, pad_token_id=tok.pad_token_id,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    return LlamaForCausalLM(cfg).eval(), tok


def _batch(tok):
    # uneven left padding: "7=" is one token shorter than "42="
    enc = tok(["7=3+4", "42=", "99=00+99", "7="] * 3, padding=True, return_tensors="pt")
    return enc.input_ids, enc.attention_mask


def test_lean_logits_equal_hugging_face_logits_at_every_real_position(tiny):
    model, tok = tiny
    ids, mask = _batch(tok)
    pos = positions_from_mask(mask)
    lean = lean_model(model)
    assert lean is not None
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits
        mine = lean.logits(lean.hidden(ids, pos, attention_mask(mask, ids.shape[1])))
    real = mask.bool()  # padding positions are never read; their values may differ
    assert torch.allclose(mine[real], ref[real], atol=1e-5)


def test_lean_gradients_equal_hugging_face_gradients(tiny):
    model, tok = tiny
    ids, mask = _batch(tok)
    pos = positions_from_mask(mask)
    lean = lean_model(model)
    weight = mask[..., None].float()  # a loss on real positions only

    def grads(logits):
        model.zero_grad(set_to_none=True)
        (torch.log_softmax(logits, -1) * weight).sum().backward()
        return [p.grad.clone() for p in model.parameters()]

    ref = grads(model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits)
    mine = grads(lean.logits(lean.hidden(ids, pos, attention_mask(mask, ids.shape[1]))))
    model.zero_grad(set_to_none=True)
    for a, b in zip(mine, ref):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_a_padding_query_still_sees_itself_so_no_row_is_all_masked():
    mask = torch.tensor([[0, 0, 1, 1]])
    am = attention_mask(mask, 4)[0, 0]  # (4, 4)
    assert am.any(-1).all()
    # a real query sees real keys up to itself, never padding
    assert am[3].tolist() == [False, False, True, True]


def test_sampling_with_the_lean_forward_matches_the_hugging_face_path(tiny, monkeypatch):
    model, tok = tiny
    enc = tok(["7=", "42=", "99="] * 4, padding=True, return_tensors="pt")
    temps = torch.tensor([1.0, 1.5, 0.8] * 4)

    def run():
        return sample(model, enc.input_ids, enc.attention_mask, temps, 8, tok.eos_token_id, tok.pad_token_id,
                      generator=torch.Generator().manual_seed(5))

    fast = run()
    monkeypatch.setattr(sampler_mod, "lean_model", lambda m: None)
    slow = run()
    assert torch.equal(fast.response_ids, slow.response_ids)
    assert torch.allclose(fast.logprobs, slow.logprobs, atol=1e-5)
    assert torch.allclose(fast.entropy, slow.entropy, atol=1e-5)


def test_the_lean_forward_is_only_taken_for_qwen2_and_llama_models():
    from transformers import GPT2Config, GPT2LMHeadModel

    assert lean_model(torch.nn.Linear(2, 2)) is None
    assert lean_model(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16))) is None


def test_picked_rows_of_the_padded_table_equal_padding_the_picked_prompts():
    prompts = [[1, 5, 6], [1, 7], [1, 8, 9, 10], [1, 4]]
    table_ids, table_mask = left_pad(prompts, 0, "cpu")
    for rows in ([1, 3, 1], [0, 2], [2, 2, 3]):
        ids, mask = pick_rows(table_ids, table_mask, torch.tensor(rows))
        ref_ids, ref_mask = left_pad([prompts[r] for r in rows], 0, "cpu")
        assert torch.equal(ids, ref_ids) and torch.equal(mask, ref_mask)
