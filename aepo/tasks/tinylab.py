"""The tiny lab: a verifiable task with many right answers and a tiny model built locally.

Task ("sum split"): the prompt is a number N followed by '='; any response "x+y" with
x + y = N (x, y decimal, no sign; the warm start writes them zero-padded to `width` digits,
which a tiny model learns far faster than free-width numbers) is right. There are N + 1
right answers per prompt, so
the policy can hold a spread over them (entropy) or collapse onto one (GRPO's failure mode).
The model is a ~100K-parameter Hugging Face Qwen2 with a character-level tokenizer, briefly
supervised on random right answers so RL starts at moderate accuracy with real entropy.
Everything is saved with `save_pretrained`, so the trainer loads it exactly like a hub model.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
CHARS = list("0123456789+=")
_ANSWER = re.compile(r"^\s*(\d{1,4})\+(\d{1,4})\s*$")


@dataclass(frozen=True)
class TinyLabSpec:
    """How a tiny-lab model is built. Its hash names the cache entry."""

    n_min: int = 10  # smallest N
    n_max: int = 99  # largest N
    width: int = 2  # digits of each addend in the warm-start answers
    heldout_every: int = 5  # every 5th N is held out (the tiny lab's eval set)
    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    intermediate_size: int = 192
    pretrain_steps: int = 400  # supervised steps on random right answers (~50% sampled accuracy)
    pretrain_batch: int = 128
    pretrain_lr: float = 3e-3
    seed: int = 1234
    version: int = 1  # bump when the recipe changes

    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


SPECS = {
    "tiny": TinyLabSpec(),
    # a deliberately weak start: same model, barely pretrained
    "tiny-weak": TinyLabSpec(pretrain_steps=200),
}


# ---- task ------------------------------------------------------------------------------
def train_numbers(spec: TinyLabSpec) -> list[int]:
    return [n for n in range(spec.n_min, spec.n_max + 1) if n % spec.heldout_every != 0]


def heldout_numbers(spec: TinyLabSpec) -> list[int]:
    return [n for n in range(spec.n_min, spec.n_max + 1) if n % spec.heldout_every == 0]


def prompt_text(n: int) -> str:
    return f"{n}="


def reward(answer: str, response: str) -> float:
    """1.0 if response is 'x+y' with x + y == int(answer), else 0.0."""
    m = _ANSWER.match(response)
    return float(m is not None and int(m.group(1)) + int(m.group(2)) == int(answer))


def tinylab_items(spec: TinyLabSpec, split: str = "train") -> list[dict[str, str]]:
    """Prompt rows in the same shape as a math prompt file: {'problem', 'answer'}."""
    nums = train_numbers(spec) if split == "train" else heldout_numbers(spec)
    return [{"problem": prompt_text(n), "answer": str(n)} for n in nums]


# ---- model and tokenizer -------------------------------------------------------------------
def build_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate([PAD, BOS, EOS, *CHARS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=PAD))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, vocab[BOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, padding_side="left"
    )


def build_model(spec: TinyLabSpec, tokenizer) -> torch.nn.Module:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        max_position_embeddings=32,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(spec.seed)
    return Qwen2ForCausalLM(cfg)


def pretrain(model: torch.nn.Module, tokenizer, spec: TinyLabSpec, log=print) -> None:
    """Supervised warm start on random right answers 'N=x+y<eos>' of the training numbers."""
    rng = random.Random(spec.seed)
    nums = train_numbers(spec)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.pretrain_lr)
    eos = tokenizer.eos_token_id
    model.train()
    t0 = time.time()
    for step in range(spec.pretrain_steps):
        texts = []
        for _ in range(spec.pretrain_batch):
            n = rng.choice(nums)
            x = rng.randint(0, n)
            texts.append(f"{prompt_text(n)}{x:0{spec.width}d}+{n - x:0{spec.width}d}")
        enc = tokenizer(texts, padding=True, return_tensors="pt")
        ids = torch.cat([enc.input_ids, torch.full((len(texts), 1), tokenizer.pad_token_id)], 1)
        mask = torch.cat([enc.attention_mask, torch.zeros(len(texts), 1, dtype=torch.long)], 1)
        # put eos right after each (left-padded) text: the last real token is at column -2
        ids[:, -1] = eos
        mask[:, -1] = 1
        labels = ids.masked_fill(mask == 0, -100)
        pos = (mask.cumsum(-1) - 1).clamp_min(0)
        loss = model(input_ids=ids, attention_mask=mask, position_ids=pos, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 100 == 0 or step + 1 == spec.pretrain_steps:
            log(f"tiny lab pretrain step {step + 1}/{spec.pretrain_steps} loss {loss.item():.3f} "
                f"({time.time() - t0:.0f}s)")
    model.eval()


def cache_root() -> Path:
    return Path(os.environ.get("AEPO_CACHE", Path.home() / ".cache" / "aepo"))


def tiny_model_path(name: str = "tiny", log=print) -> Path:
    """Build (once) and return the directory of a tiny-lab model; safe under concurrent callers."""
    spec = SPECS[name]
    target = cache_root() / f"tinylab-{name}-{spec.key()}"
    if (target / "tinylab.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"building tiny-lab model '{name}' in {target} (once; cached afterwards)")
    tokenizer = build_tokenizer()
    model = build_model(spec, tokenizer)
    with torch.random.fork_rng():
        pretrain(model, tokenizer, spec, log=log)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "tinylab.json").write_text(json.dumps({"name": name, **asdict(spec)}, indent=2))
    try:
        tmp.rename(target)
    except OSError:  # another process finished first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_spec(model_dir: str | Path) -> TinyLabSpec | None:
    """The tiny-lab spec of a model directory, or None for any other model."""
    p = Path(model_dir) / "tinylab.json"
    if not p.is_file():
        return None
    d = json.loads(p.read_text())
    d.pop("name", None)
    return TinyLabSpec(**d)
