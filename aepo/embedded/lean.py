"""A lean functional forward for small Qwen2 and Llama models: the same math as Hugging Face's
`Qwen2ForCausalLM.forward` / `LlamaForCausalLM.forward` (the two differ in Qwen2's q/k/v biases),
in about a third of the tensor ops and none of its per-call Python (mask builders, output
capturing, cache objects).

Why: on the tiny lab (108K parameters, 128 rows of ~12 tokens) a step is dispatch-bound, not
FLOP-bound; HF's per-call overhead was half the step (issue 7). For a 7B model on a GPU the
overhead is noise, so the trainer uses this only on CPU (see `lean_model`).

It reads the module's own parameters, so gradients flow into them and the optimizer, checkpoint
and HF code paths are unchanged. `tests/test_lean.py` checks it against HF's forward (logits,
gradients, KV-cache decoding) for both. Shapes: B rows, L positions, H heads, D head dim, V vocabulary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class LeanDecoder:
    """Functional forward over a `Qwen2ForCausalLM`'s or `LlamaForCausalLM`'s parameters (default
    RoPE, full attention, SiLU MLP without biases)."""

    def __init__(self, model: torch.nn.Module):
        cfg = model.config
        self.model = model
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.eps = cfg.rms_norm_eps
        self.inv_freq = model.model.rotary_emb.inv_freq  # (D/2,)
        self.rope_scale = float(getattr(model.model.rotary_emb, "attention_scaling", 1.0))

    # ---- pieces -------------------------------------------------------------------------------
    def rope(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """position_ids (B, L) -> cos, sin (B, 1, L, D), as HF's rotary embedding (float32)."""
        freqs = position_ids[..., None].float() * self.inv_freq.float()  # (B, L, D/2)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        if self.rope_scale != 1.0:
            cos, sin = cos * self.rope_scale, sin * self.rope_scale
        return cos[:, None], sin[:, None]

    @staticmethod
    def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        # x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1]
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos + torch.cat((-x2, x1), dim=-1) * sin

    def norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # RMSNorm: w * x / sqrt(mean(x^2) + eps)
        return F.rms_norm(x, (x.shape[-1],), weight, self.eps)

    # ---- forward ------------------------------------------------------------------------------
    def hidden(self, input_ids: torch.Tensor, position_ids: torch.Tensor, attn_mask: torch.Tensor,
               kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None, start: int = 0) -> torch.Tensor:
        """Final hidden states (B, L, hidden) of `input_ids` (B, L).

        attn_mask: (B, 1, L, S) bool, True where a query may attend a key (S keys in all).
        kv: per layer a preallocated (K, V) pair of shape (B, H_kv, S_max, D); this call writes its
        keys and values at positions [start, start + L) and attends over [0, start + L).
        """
        m = self.model.model
        b, n = input_ids.shape
        h = F.embedding(input_ids, m.embed_tokens.weight)  # (B, L, hidden)
        cos, sin = self.rope(position_ids)
        hd, nh, nkv = self.head_dim, self.n_heads, self.n_kv
        for i, layer in enumerate(m.layers):
            at = layer.self_attn
            x = self.norm(h, layer.input_layernorm.weight)
            q = F.linear(x, at.q_proj.weight, at.q_proj.bias).view(b, n, nh, hd).transpose(1, 2)  # (B, H, L, D)
            k = F.linear(x, at.k_proj.weight, at.k_proj.bias).view(b, n, nkv, hd).transpose(1, 2)
            v = F.linear(x, at.v_proj.weight, at.v_proj.bias).view(b, n, nkv, hd).transpose(1, 2)
            q, k = self.rotate(q, cos, sin), self.rotate(k, cos, sin)
            if kv is not None:
                kc, vc = kv[i]
                kc[:, :, start:start + n] = k
                vc[:, :, start:start + n] = v
                k, v = kc[:, :, :start + n], vc[:, :, :start + n]
            # softmax(q k^T / sqrt(D) + mask) v, grouped-query heads shared
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, enable_gqa=nkv != nh)
            h = h + F.linear(o.transpose(1, 2).reshape(b, n, nh * hd), at.o_proj.weight, at.o_proj.bias)
            x = self.norm(h, layer.post_attention_layernorm.weight)
            mlp = layer.mlp
            # down(silu(gate(x)) * up(x))
            h = h + F.linear(F.silu(F.linear(x, mlp.gate_proj.weight)) * F.linear(x, mlp.up_proj.weight),
                             mlp.down_proj.weight)
        return h

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Hidden states (..., hidden) -> logits (..., V)."""
        m = self.model
        return F.linear(self.norm(h, m.model.norm.weight), m.lm_head.weight, getattr(m.lm_head, "bias", None))

    def new_cache(self, b: int, s_max: int, like: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        shape = (b, self.n_kv, s_max, self.head_dim)
        return [(like.new_empty(shape), like.new_empty(shape)) for _ in self.model.model.layers]


def attention_mask(key_mask: torch.Tensor, n_queries: int) -> torch.Tensor:
    """Causal attention over left-padded rows. key_mask: (B, S) 1 on real keys; the queries are
    the last n_queries positions. Returns (B, 1, n_queries, S) bool.

    A query also sees its own position, so a padding query never has an empty row (an all-masked
    softmax is NaN, and a NaN would reach the gradients through the weights)."""
    s = key_mask.shape[1]
    q_pos = torch.arange(s - n_queries, s, device=key_mask.device)[:, None]  # (n, 1)
    k_pos = torch.arange(s, device=key_mask.device)[None, :]  # (1, S)
    causal = k_pos <= q_pos  # (n, S)
    return ((causal & key_mask.bool()[:, None, :]) | (k_pos == q_pos))[:, None]


def lean_model(model: torch.nn.Module) -> LeanDecoder | None:
    """The lean forward for a float32 CPU Qwen2 or Llama with default RoPE and full attention; None
    otherwise (HF's forward then runs: GPUs, half precision, other architectures)."""
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) not in ("qwen2", "llama"):
        return None
    rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    ok = (
        next(model.parameters()).device.type == "cpu"
        and next(model.parameters()).dtype == torch.float32
        and rope.get("rope_type", rope.get("type", "default")) == "default"
        and not getattr(cfg, "use_sliding_window", False)
        and getattr(cfg, "hidden_act", "silu") == "silu"
        and float(getattr(cfg, "attention_dropout", 0.0)) == 0.0
        and hasattr(model, "model") and hasattr(model.model, "rotary_emb")
        and not getattr(cfg, "mlp_bias", False) and getattr(cfg, "pretraining_tp", 1) == 1  # llama's options
    )
    return LeanDecoder(model) if ok else None
