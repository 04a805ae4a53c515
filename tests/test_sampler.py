"""The KV-cache sampler: per-row temperatures, T = 1 log-probs and entropy, and agreement
with a teacher-forced forward pass (the fast path against the slow reference)."""

from types import SimpleNamespace

import torch

from aepo.core.entropy import entropy_from_logits
from aepo.embedded.sampler import response_logits, sample

BASE_LOGITS = torch.tensor([2.0, 1.0, 0.0, -1.0])  # V = 4; token 3 is also eos below


class FixedLogits(torch.nn.Module):
    """A 'model' whose next-token logits are always BASE_LOGITS."""

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=True, past_key_values=None):
        b, t = input_ids.shape
        return SimpleNamespace(logits=BASE_LOGITS.expand(b, t, 4).clone(), past_key_values=None, cache=None)


def test_each_row_is_sampled_at_its_own_temperature():
    n = 6000
    temps = torch.tensor([0.5] * n + [1.0] * n + [2.0] * n)
    ids = torch.zeros(3 * n, 1, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    r = sample(FixedLogits(), ids, torch.ones_like(ids), temps, max_new_tokens=1, eos_id=3, pad_id=0, generator=g)
    first = r.response_ids[:, 0]
    for i, t in enumerate((0.5, 1.0, 2.0)):
        freq = torch.bincount(first[i * n:(i + 1) * n], minlength=4).float() / n
        expected = torch.softmax(BASE_LOGITS / t, -1)
        # binomial standard error <= sqrt(.25 / 6000) = 0.0065; 5 sigma
        assert torch.allclose(freq, expected, atol=0.032), (t, freq, expected)


def test_logprobs_and_entropy_are_reported_at_temperature_one_whatever_the_row_temperature():
    ids = torch.zeros(2, 1, dtype=torch.long)
    r = sample(FixedLogits(), ids, torch.ones_like(ids), torch.tensor([0.5, 2.0]), 1, eos_id=3, pad_id=0,
               generator=torch.Generator().manual_seed(1))
    logp1 = torch.log_softmax(BASE_LOGITS, -1)
    assert torch.allclose(r.logprobs[:, 0], logp1[r.response_ids[:, 0]])
    assert torch.allclose(r.entropy[:, 0], entropy_from_logits(BASE_LOGITS).expand(2))


def test_rows_stop_at_eos_and_are_masked_after_it():
    ids = torch.zeros(400, 1, dtype=torch.long)
    r = sample(FixedLogits(), ids, torch.ones_like(ids), torch.full((400,), 3.0), 6, eos_id=3, pad_id=0,
               generator=torch.Generator().manual_seed(2))
    for row, m in zip(r.response_ids, r.response_mask):
        n = int(m.sum())
        assert (row[:n - 1] != 3).all()
        assert row[n - 1] == 3 or n == 6
        assert (row[n:] == 0).all()


def test_kv_cache_sampling_agrees_with_a_teacher_forced_forward(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    enc = tok(["7=", "42=", "99="] * 4, padding=True, return_tensors="pt")  # uneven left padding
    temps = torch.tensor([1.0, 1.5, 0.8] * 4)
    r = sample(model, enc.input_ids, enc.attention_mask, temps, 8, tok.eos_token_id, tok.pad_token_id,
               generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits = response_logits(model, r)
    logp = torch.log_softmax(logits, -1).gather(-1, r.response_ids[..., None]).squeeze(-1) * r.response_mask
    assert torch.allclose(logp, r.logprobs, atol=1e-4)
    assert torch.allclose(entropy_from_logits(logits) * r.response_mask, r.entropy, atol=1e-4)


def test_a_response_padded_with_special_tokens_before_its_cap_is_not_a_right_answer():
    # A wide-lab policy learned 'x+y<bos><bos>...' up to the length cap: decoding with
    # skip_special_tokens read it as 'x+y' and paid it. The text keeps them; the stop token goes.
    from aepo.tasks.responses import response_texts
    from aepo.tasks.tinylab import build_tokenizer, reward

    tok = build_tokenizer()
    bos, eos, pad = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
    digits = lambda s: [tok.convert_tokens_to_ids(c) for c in s]  # noqa: E731
    rows = torch.tensor([digits("013+122") + [bos, bos, bos],      # never stopped: the hack
                         digits("013+122") + [eos, pad, pad],      # stopped: right
                         digits("013+12") + [pad, eos, pad, pad]])  # a pad it wrote itself: not an answer
    texts = response_texts(tok, rows, [eos])
    assert texts == ["013+122<bos><bos><bos>", "013+122", "013+12<pad>"]
    assert [reward("135", t) for t in texts] == [0.0, 1.0, 0.0]
