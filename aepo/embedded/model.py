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
