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
import random
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
CHARS = list("0123456789+=")
_ANSWER = re.compile(r"^\s*(\d{1,4})\+(\d{1,4})\s*$")


@dataclass(frozen=True)
class TinyLabSpec:
    """How a tiny-lab start is built (`build`); the shipped weights are its output on one machine."""

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


SPECS = {
    "tiny": TinyLabSpec(),
    # a deliberately weak start: same model, barely pretrained
    "tiny-weak": TinyLabSpec(pretrain_steps=200),
    # The wide lab (issue 16), where the entropy-accuracy curve can be resolved: three-digit sums
    # N = 100..999 (every third held out: 300 held-out prompts, 600 training prompts), answers
    # 'xxx+yyy' (8 tokens with eos, 3 of them forced by the first 3), a 3-layer model (362K
    # parameters). Its warm start learns the rule abruptly between 700 and 900 supervised steps
    # (sampled accuracy 0.7% at 700, 13% at 800, 33% at 900, one build measured); 800 leaves RL
    # the most to learn while RL still learns from it (from 700 it does not, in 400 steps).
    "tiny-wide": TinyLabSpec(n_min=100, n_max=999, width=3, heldout_every=3, hidden_size=96, layers=3,
                             intermediate_size=288, pretrain_steps=800),
}
# More starts of each recipe, differing only in the build seed (initialisation and warm-start
# data order), so that a study can tell a finding about the method from one about one start
# (issue 20): `tiny-b2`, `tiny-b3`, `tiny-weak-b2`, `tiny-weak-b3`.
for _name in ("tiny", "tiny-weak"):
    for _seed in (2, 3):
        SPECS[f"{_name}-b{_seed}"] = replace(SPECS[_name], seed=_seed)
STARTS = {"tiny": ("tiny", "tiny-b2", "tiny-b3"), "tiny-weak": ("tiny-weak", "tiny-weak-b2", "tiny-weak-b3")}


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


# ---- the shipped starts --------------------------------------------------------------------
# The weights of every named start ship inside the package (about 0.4 MB each) with a SHA-256 of
# every file in `MANIFEST`: floating-point reductions differ between machines and thread counts,
# so a recipe rebuilt elsewhere need not give these bits, and every study must start from the same
# model. `python -m aepo.tasks.tinylab build NAME --out DIR` reruns the recipe (one torch thread)
# and says whether it reproduced the shipped file.
SHIPPED = Path(__file__).with_name("tinylab_models")
MANIFEST = "MANIFEST.json"


def shipped_path(name: str) -> Path:
    """The package directory of a named start (a Hugging Face model directory)."""
    return SHIPPED / name


def file_digests(model_dir: Path) -> dict[str, str]:
    """{file name: sha256} of every file of a model directory but the manifest."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(model_dir).iterdir()) if p.is_file() and p.name != MANIFEST}


def tiny_model_path(name: str = "tiny", log=print) -> Path:
    """The directory of a named tiny-lab start: the shipped copy, checked against its manifest."""
    if name not in SPECS:
        raise KeyError(name)
    target = shipped_path(name)
    manifest = target / MANIFEST
    if not manifest.is_file():
        from aepo.config import ConfigError

        raise ConfigError(f"the tiny-lab start '{name}' is missing from {target}: reinstall aepo "
                          f"or rebuild it with `python -m aepo.tasks.tinylab build {name} --out {target}`")
    return target


def build(name: str, out: Path, log=print) -> dict[str, str]:
    """Rerun a start's recipe into `out` (one torch thread); returns the file digests."""
    spec = SPECS[name]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tokenizer = build_tokenizer()
        model = build_model(spec, tokenizer)
        with torch.random.fork_rng():
            pretrain(model, tokenizer, spec, log=log)
    finally:
        torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "tinylab.json").write_text(json.dumps({"name": name, **asdict(spec)}, indent=2) + "\n")
    digests = file_digests(out)
    (out / MANIFEST).write_text(json.dumps(digests, indent=2) + "\n")
    return digests


def load_spec(model_dir: str | Path) -> TinyLabSpec | None:
    """The tiny-lab spec of a model directory, or None for any other model."""
    p = Path(model_dir) / "tinylab.json"
    if not p.is_file():
        return None
    d = json.loads(p.read_text())
    d.pop("name", None)
    return TinyLabSpec(**d)


def main(argv: list[str] | None = None) -> int:
    """`python -m aepo.tasks.tinylab build NAME --out DIR`: rebuild a shipped start and compare."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m aepo.tasks.tinylab", description=main.__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="rerun a start's recipe into --out and compare with the shipped files")
    b.add_argument("name", choices=sorted(SPECS))
    b.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    digests = build(args.name, args.out)
    shipped = json.loads((shipped_path(args.name) / MANIFEST).read_text()) if \
        (shipped_path(args.name) / MANIFEST).is_file() else {}
    same = digests.get("model.safetensors") == shipped.get("model.safetensors")
    print(f"{args.out}: model.safetensors {digests['model.safetensors'][:16]}; shipped "
          f"{shipped.get('model.safetensors', 'none')[:16]}: {'identical' if same else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
