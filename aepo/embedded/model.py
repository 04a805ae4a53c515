"""Loading a Hugging Face causal LM for the embedded backend (training and evaluation)."""

from __future__ import annotations

import torch

from aepo.config import ConfigError


def resolve_device(name: str) -> torch.device:
    import re

    from aepo.config import DEVICES

    if re.fullmatch(DEVICES, name) is None:
        raise ConfigError(f"unknown device '{name}' (auto | cpu | cuda | cuda:N | mps)")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' requested but CUDA is not available")
    return torch.device(name)


def load_model(name_or_path: str, dtype: str, device: torch.device):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bars on stderr: errors stay one line there
    try:
        tok = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=getattr(torch, dtype))
    except Exception as e:  # OSError, ValueError, safetensors' SafetensorError on a damaged file, ...
        msg = " ".join(str(e).split())[:200]
        raise ConfigError(f"cannot load the model in {name_or_path} ({type(e).__name__}: {msg}): "
                          "check the directory, or move a damaged checkpoint away") from None
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model.to(device), tok



def stop_ids(model, tokenizer) -> list[int]:
    """Token ids that end a response: the generation config's eos ids, the tokenizer's eos,
    and a chat end-of-turn token (`<|im_end|>`, `<|eot_id|>`) where the vocabulary has one."""
    gen = getattr(model, "generation_config", None)
    eos = getattr(gen, "eos_token_id", None)
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
