"""What a response is, for every reward and score: where it stops, and the text a reward reads.

One definition for both backends and `aepo eval`, so a policy cannot be paid by one reader and not
another: the embedded trainer's rewards and validation, `aepo eval`, and verl's reward manager
(`aepo.verl_backend.reward`) all cut a response at its first stop token and keep any special token
written before it.
"""

from __future__ import annotations

from aepo.config import ConfigError


def stop_ids(tokenizer, generation_config=None) -> list[int]:
    """Token ids that end a response: the generation config's eos ids, the tokenizer's eos,
    and a chat end-of-turn token (`<|im_end|>`, `<|eot_id|>`) where the vocabulary has one."""
    eos = getattr(generation_config, "eos_token_id", None)
    vocab = tokenizer.get_vocab()
    candidates = [*(eos if isinstance(eos, list) else [eos]), tokenizer.eos_token_id,
                  *(vocab[t] for t in ("<|im_end|>", "<|eot_id|>") if t in vocab)]
    ids: list[int] = []
    for i in candidates:
        if i is not None and int(i) not in ids:
            ids.append(int(i))
    if not ids:
        raise ConfigError("the tokenizer has no eos token")
    return ids


def response_texts(tokenizer, response_ids, stops: list[int]) -> list[str]:
    """Each row's response as text: its tokens up to its first stop token, which is left out.

    Special tokens the policy wrote before that stay in the text (`<bos>`, `<pad>`, a chat marker),
    so that a reward cannot be met by an answer followed by tokens that decoding would drop: with
    skip_special_tokens a tiny-lab policy learned to write 'x+y<bos><bos>...' up to the length cap,
    keeping its reward while it spent its entropy on the tail. response_ids: (B, T) tensor, each row
    padded after its stop token (or full, if it never stopped)."""
    stop, texts = set(stops), []
    for ids in response_ids.tolist():
        cut = next((j for j, t in enumerate(ids) if t in stop), len(ids))
        texts.append(tokenizer.decode(ids[:cut], skip_special_tokens=False))
    return texts
