"""Batched KV-cache sampling with a per-row temperature (and, optionally, a per-row nucleus or
min-p threshold: `aepo.core.pistar`).

One call generates the main batch (T = 1) and the temperature-adjusted rows together, so
AEPO pays no second rollout pass. Alongside the tokens it returns, for free, the T = 1
log-probability of each sampled token and the exact T = 1 token entropy, read off the same
logits: the controller's signal and the PPO "old" log-probs need no extra forward.
On CPU, a float32 Qwen2 runs through `aepo.embedded.lean` (same math, a third of the ops, a
preallocated KV cache); any other model through its Hugging Face forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aepo.core.entropy import entropy_from_logprobs
from aepo.embedded.lean import attention_mask, lean_model


@dataclass
class Rollout:
    prompt_ids: torch.Tensor  # (B, L) left-padded
    prompt_mask: torch.Tensor  # (B, L)
    response_ids: torch.Tensor  # (B, T) right-padded with pad_id
    response_mask: torch.Tensor  # (B, T) 1 on generated tokens, eos included
    logprobs: torch.Tensor  # (B, T) log pi(o_t) at T = 1 of the sampled tokens
    entropy: torch.Tensor  # (B, T) exact H_t of pi at T = 1

    def select(self, rows: torch.Tensor) -> "Rollout":
        return Rollout(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))

    def to(self, device: torch.device | str) -> "Rollout":
        return Rollout(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))

    def then(self, other: "Rollout", pad_id: int) -> "Rollout":
        """This rollout's rows followed by `other`'s (same prompt width); the shorter responses are
        padded with pad_id, mask 0."""
        t = max(self.response_ids.shape[1], other.response_ids.shape[1])

        def wide(x: torch.Tensor, fill: float) -> torch.Tensor:
            return torch.nn.functional.pad(x, (0, t - x.shape[1]), value=fill)

        return Rollout(torch.cat([self.prompt_ids, other.prompt_ids]), torch.cat([self.prompt_mask, other.prompt_mask]),
                       torch.cat([wide(self.response_ids, pad_id), wide(other.response_ids, pad_id)]),
                       *(torch.cat([wide(getattr(self, f), 0), wide(getattr(other, f), 0)])
                         for f in ("response_mask", "logprobs", "entropy")))


def _cache_kwarg(model: torch.nn.Module) -> str:
    """transformers >= 5.2x names the KV cache argument `cache`; older releases `past_key_values`."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _returned_cache(out):
    return out.cache if getattr(out, "cache", None) is not None else out.past_key_values


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip left padding. mask: (B, L) -> (B, L)."""
    return (mask.long().cumsum(-1) - 1).clamp_min(0)


@torch.no_grad()
def sample(
    model: torch.nn.Module,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    temperatures: torch.Tensor,
    max_new_tokens: int,
    eos_id: int | list[int],
    pad_id: int,
    generator: torch.Generator | None = None,
    greedy: bool = False,
    top_p: torch.Tensor | None = None,
    min_p: torch.Tensor | None = None,
) -> Rollout:
    """Sample one response per row. prompt_ids, prompt_mask: (B, L); temperatures: (B,);
    top_p, min_p: (B,) per-row thresholds applied after the temperature (1.0 and 0.0: none).

    A row stops at its first token in `eos_id` (one id or several, e.g. Qwen's <|im_end|>).
    """
    device = prompt_ids.device
    stop_ids = torch.tensor([eos_id] if isinstance(eos_id, int) else list(eos_id), device=device)
    b, n_prompt = prompt_ids.shape
    temps = temperatures.to(device=device, dtype=torch.float32)[:, None]  # (B, 1)
    top_p = None if top_p is None else top_p.to(device=device, dtype=torch.float32)[:, None]  # (B, 1)
    min_p = None if min_p is None else min_p.to(device=device, dtype=torch.float32)[:, None]  # (B, 1)
    mask = prompt_mask.clone()
    positions = positions_from_mask(mask)
    lean = lean_model(model)
    if lean is not None:  # preallocated KV cache, no HF per-call overhead (aepo/embedded/lean.py)
        s_max = n_prompt + max_new_tokens
        cache = lean.new_cache(b, s_max, model.model.embed_tokens.weight)
        key_mask = torch.ones(b, s_max, dtype=torch.bool, device=device)  # generated keys stay visible
        key_mask[:, :n_prompt] = prompt_mask.bool()
        h = lean.hidden(prompt_ids, positions, attention_mask(key_mask[:, :n_prompt], n_prompt), cache)
        logits = lean.logits(h[:, -1]).float()  # (B, V)
    else:
        cache_kw = _cache_kwarg(model)
        out = model(input_ids=prompt_ids, attention_mask=mask, position_ids=positions, use_cache=True)
        cache = _returned_cache(out)
        logits = out.logits[:, -1, :].float()  # (B, V)
    next_pos = positions[:, -1:] + 1  # (B, 1)
    done = torch.zeros(b, dtype=torch.bool, device=device)
    tokens, logps, ents, alive = [], [], [], []
    for t in range(max_new_tokens):
        logp1 = torch.log_softmax(logits, dim=-1)  # (B, V) pi at T = 1
        if greedy:
            tok = logits.argmax(-1)
        else:
            probs = torch.softmax(logits / temps, dim=-1)  # (B, V) pi^T, one T per row
            if top_p is not None or min_p is not None:
                probs = truncate(probs, top_p, min_p)
            tok = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        tok = torch.where(done, torch.full_like(tok, pad_id), tok)
        alive.append(~done)
        tokens.append(tok)
        logps.append(logp1.gather(-1, tok[:, None]).squeeze(-1))
        ents.append(entropy_from_logprobs(logp1))
        done = done | torch.isin(tok, stop_ids)
        if bool(done.all()) or t == max_new_tokens - 1:
            break
        # every generated position stays visible (rows past eos are masked out of the loss later),
        # exactly as in `response_logits`, so the two passes see the same context
        if lean is not None:
            s = n_prompt + t + 1  # keys after this token
            h = lean.hidden(tok[:, None], next_pos, key_mask[:, None, None, :s], cache, start=s - 1)
            logits = lean.logits(h[:, -1]).float()
        else:
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            out = model(input_ids=tok[:, None], attention_mask=mask, position_ids=next_pos,
                        use_cache=True, **{cache_kw: cache})
            cache = _returned_cache(out)
            logits = out.logits[:, -1, :].float()
        next_pos = next_pos + 1
    resp_mask = torch.stack(alive, 1).long()  # (B, T)
    return Rollout(
        prompt_ids=prompt_ids,
        prompt_mask=prompt_mask,
        response_ids=torch.stack(tokens, 1),
        response_mask=resp_mask,
        logprobs=torch.stack(logps, 1) * resp_mask,
        entropy=torch.stack(ents, 1) * resp_mask,
    )


def sample_bytes(config, rows: int, prompt_len: int, max_new_tokens: int, element_size: int) -> int:
    """Memory one `sample` call holds at its peak beyond the weights, from the model's config: the
    KV cache of every layer at full length, 2 * layers * rows * (prompt_len + max_new_tokens) *
    kv_heads * head_dim * element_size, plus one layer's prefill attention scores and weights,
    2 * rows * heads * prompt_len^2 * 4 (float32). The cache dominates for long answers
    (SmolLM2-135M, 100 rows of 2,300 tokens: 10.6 GB)."""
    layers, heads = config.num_hidden_layers, config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    cache = 2 * layers * rows * (prompt_len + max_new_tokens) * kv_heads * head_dim * element_size
    attention = 2 * rows * heads * prompt_len * prompt_len * 4
    return cache + attention


def truncate(probs: torch.Tensor, top_p: torch.Tensor | None, min_p: torch.Tensor | None) -> torch.Tensor:
    """Row-wise truncated sampling distributions, renormalised by multinomial. probs: (B, V);
    top_p, min_p: (B, 1).

        min-p (Nguyen et al. 2024, arXiv 2407.01082):  keep v with p_v >= min_p * max_u p_u
        nucleus (Holtzman et al. 2020):                 keep the most likely tokens whose
                                                        mass before them is < top_p
    The most likely token always stays; top_p 1 and min_p 0 keep every token."""
    keep = torch.ones_like(probs, dtype=torch.bool)
    if min_p is not None:
        keep &= probs >= min_p * probs.max(dim=-1, keepdim=True).values
    if top_p is not None:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        before = sorted_p.cumsum(-1) - sorted_p  # mass of the more likely tokens
        keep &= torch.zeros_like(keep).scatter(-1, order, (before < top_p) | (top_p >= 1.0))
    return probs * keep


@torch.no_grad()
def scored_by(model: torch.nn.Module, rollout: Rollout) -> Rollout:
    """The rollout with its log-probs and token entropies those of `model` at T = 1 (one
    teacher-forced forward): rows another model sampled, seen by the policy."""
    logp = torch.log_softmax(response_logits(model, rollout).float(), -1)  # (B, T, V)
    mask = rollout.response_mask
    return Rollout(rollout.prompt_ids, rollout.prompt_mask, rollout.response_ids, mask,
                   logp.gather(-1, rollout.response_ids[..., None]).squeeze(-1) * mask,
                   entropy_from_logprobs(logp) * mask)


def response_logits(model: torch.nn.Module, rollout: Rollout) -> torch.Tensor:
    """Teacher-forced logits of the response tokens. Returns (B, T, V)."""
    ids = torch.cat([rollout.prompt_ids, rollout.response_ids], dim=1)  # (B, L + T)
    mask = torch.cat([rollout.prompt_mask, torch.ones_like(rollout.response_mask)], dim=1)
    L, T = rollout.prompt_ids.shape[1], rollout.response_ids.shape[1]
    lean = lean_model(model)
    if lean is not None:  # the lm head only at the T positions that predict response tokens
        h = lean.hidden(ids, positions_from_mask(mask), attention_mask(mask, ids.shape[1]))
        return lean.logits(h[:, L - 1 : L + T - 1])
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask), use_cache=False)
    return out.logits[:, L - 1 : L + T - 1, :]
