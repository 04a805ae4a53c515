"""Response generation for evaluation: the embedded backend (the trainer's own batched
KV-cache sampler, CPU or GPU) and vLLM when it is installed (GPU).

Greedy decoding when temperature is 0; otherwise n samples per prompt at that temperature.
Rows stop at any of the model's stop ids (`aepo.embedded.model.stop_ids`), which are cut
from the decoded text.
"""

from __future__ import annotations

from pathlib import Path

import torch

from aepo.embedded.checkpoint import CHECKPOINT

# Prompt templates; `{problem}` is substituted with str.format (write literal braces doubled).
TEMPLATES = {
    # Qwen2.5-Math evaluation's chat format ("qwen25-math-cot")
    "qwen-math": ("<|im_start|>system\nPlease reason step by step, and put your final answer "
                  "within \\boxed{{}}.<|im_end|>\n<|im_start|>user\n{problem}<|im_end|>\n"
                  "<|im_start|>assistant\n"),
    # the trainer's default math prompt (aepo.config.DataConfig.prompt_template)
    "plain": "{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}.\n",
    # the problem text alone (the tiny lab always uses this)
    "raw": "{problem}",
}


class ModelError(ValueError):
    """The model path is not a model or run directory; the message is one line."""


def format_prompt(template: str, problem: str) -> str:
    """Fill a template name from TEMPLATES, or a literal template containing {problem}."""
    return TEMPLATES.get(template, template).format(problem=problem)


def resolve_model_dir(path_or_run_dir: str | Path) -> Path:
    """A HF model directory as is; an embedded run directory's `checkpoint/`; a verl run's last
    `checkpoints/global_step_N/actor/huggingface` (the toolkit asks verl to save it there)."""
    p = Path(path_or_run_dir)
    if (p / CHECKPOINT / "config.json").is_file():
        return p / CHECKPOINT
    verl_root = p / "checkpoints"
    if (verl_root / "latest_checkpointed_iteration.txt").is_file():
        step = (verl_root / "latest_checkpointed_iteration.txt").read_text().strip()
        actor = verl_root / f"global_step_{step}" / "actor"
        hf = actor / "huggingface"
        if any(hf.glob("*.safetensors")) or (hf / "model.safetensors.index.json").is_file():
            return hf
        raise ModelError(f"{p} is a verl run whose last checkpoint ({actor}) holds FSDP shards only: convert it with "
                         f"`python -m verl.model_merger merge --backend fsdp --local_dir {actor} --target_dir {hf}` "
                         "and run aepo eval again")
    if (p / "config.json").is_file() and not _is_run_record(p / "config.json"):
        return p
    raise ModelError(f"{p} is neither a model directory (config.json) nor a run directory with a checkpoint "
                     "(checkpoint/ or verl's checkpoints/)")


def _is_run_record(path: Path) -> bool:
    """True for a run directory's config.json (the toolkit's record), False for a model's."""
    import json

    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(d, dict) and "config" in d and "versions" in d


def load_model(path_or_run_dir: str | Path, device: str | torch.device = "auto"):
    """Load (model, tokenizer) from a HF model dir or a run dir (its checkpoint/) with the
    trainer's loader; model in eval mode, bfloat16 on CUDA, float32 on CPU."""
    from aepo.embedded.model import load_model as load, resolve_device

    dev = resolve_device(str(device))
    model, tokenizer = load(str(resolve_model_dir(path_or_run_dir)),
                            "bfloat16" if dev.type == "cuda" else "float32", dev)
    return model.eval(), tokenizer


@torch.no_grad()
def generate_embedded(model, tokenizer, prompts: list[str], n: int = 1, temperature: float = 0.0,
                      max_new_tokens: int = 1024, batch_size: int = 32, seed: int = 0) -> list[list[str]]:
    """n responses per prompt with the trainer's sampler (aepo.embedded.sampler.sample).
    Returns a list (one per prompt) of n decoded responses."""
    from aepo.embedded.model import stop_ids
    from aepo.embedded.sampler import sample

    device = next(model.parameters()).device
    stops = stop_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    generator = torch.Generator(device=device).manual_seed(seed)
    rows = [p for p in prompts for _ in range(n)]  # prompt i's samples at rows i*n .. i*n+n-1
    texts: list[str] = []
    for start in range(0, len(rows), batch_size):
        enc = tokenizer(rows[start : start + batch_size], return_tensors="pt", padding=True)
        b = enc.input_ids.shape[0]
        out = sample(model, enc.input_ids.to(device), enc.attention_mask.to(device),
                     torch.full((b,), max(temperature, 1e-6)), max_new_tokens, stops, pad_id,
                     generator=generator, greedy=temperature == 0)
        for ids in out.response_ids.tolist():  # (B, T) rows
            cut = next((j for j, t in enumerate(ids) if t in stops), len(ids))
            texts.append(tokenizer.decode(ids[:cut], skip_special_tokens=True))
    return [texts[i * n : (i + 1) * n] for i in range(len(prompts))]


def vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def vllm_engine(model_dir: str | Path, seed: int = 0):
    """A vLLM engine for the model (GPU; `pip install vllm`): built once, it serves every benchmark."""
    try:
        from vllm import LLM
    except ImportError:
        raise ModelError("the vllm backend needs vLLM: pip install vllm") from None
    return LLM(model=str(resolve_model_dir(model_dir)), seed=seed)


def generate_vllm(llm, prompts: list[str], n: int = 1, temperature: float = 0.0,
                  max_new_tokens: int = 1024, seed: int = 0) -> list[list[str]]:
    """n responses per prompt from a `vllm_engine`."""
    from vllm import SamplingParams

    params = SamplingParams(n=n, temperature=temperature, max_tokens=max_new_tokens, seed=seed)
    return [[o.text for o in r.outputs] for r in llm.generate(prompts, params)]
