"""Response generation for evaluation: the embedded backend (the trainer's own batched
KV-cache sampler, CPU or GPU) and vLLM when it is installed (GPU).

Greedy decoding when temperature is 0; otherwise n samples per prompt at that temperature.
Rows stop at any of the model's stop ids (`aepo.tasks.responses.stop_ids`), which are cut
from the decoded text.
"""

from __future__ import annotations

from pathlib import Path

import torch

from aepo.config import MATH_PROMPT
from aepo.errors import UserError
from aepo.rundir import model_dir_of

# Prompt templates; `{problem}` is substituted with str.format (write literal braces doubled).
TEMPLATES = {
    # Qwen2.5-Math evaluation's chat format ("qwen25-math-cot")
    "qwen-math": ("<|im_start|>system\nPlease reason step by step, and put your final answer "
                  "within \\boxed{{}}.<|im_end|>\n<|im_start|>user\n{problem}<|im_end|>\n"
                  "<|im_start|>assistant\n"),
    # the trainer's default math prompt (aepo.config.DataConfig.prompt_template)
    "plain": MATH_PROMPT,
    # the problem text alone (the tiny lab always uses this)
    "raw": "{problem}",
}


def format_prompt(template: str, problem: str) -> str:
    """Fill a template name from TEMPLATES, or a literal template containing {problem}."""
    return TEMPLATES.get(template, template).format(problem=problem)


def load_eval_model(path_or_run_dir: str | Path, device: str | torch.device = "auto"):
    """(model, tokenizer) of a HF model dir or a run dir (aepo.rundir.model_dir_of) through the
    trainer's loader; model in eval mode, bfloat16 on CUDA, float32 on CPU."""
    from aepo.embedded.model import load_model, resolve_device

    dev = resolve_device(str(device))
    model, tokenizer = load_model(str(model_dir_of(path_or_run_dir)), "bfloat16" if dev.type == "cuda" else "float32", dev)
    return model.eval(), tokenizer


def free_bytes(device: torch.device) -> int | None:
    """Memory free for a new allocation on `device`: CUDA's free memory, or on Linux the smaller of
    /proc/meminfo's MemAvailable and what the cgroup (a container's limit) has left; None if unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    free = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free.append(int(line.split()[1]) * 1024)
        cg = Path("/sys/fs/cgroup")
        limit = (cg / "memory.max").read_text().strip() if (cg / "memory.max").is_file() else "max"
        if limit != "max":
            free.append(int(limit) - int((cg / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(free) if free else None


def check_batch_fits(model, tokenizer, prompts: list[str], n: int, max_new_tokens: int, batch_size: int,
                     special_tokens: bool = True) -> None:
    """Refuse, before any generation, a --batch-size whose KV cache and prefill attention
    (aepo.embedded.sampler.sample_bytes, at the longest prompt) exceed the device's free memory:
    the process would be killed midway instead."""
    from aepo.embedded.sampler import sample_bytes

    device = next(model.parameters()).device
    free = free_bytes(device)
    if free is None or not prompts:
        return
    longest = max(len(ids) for ids in tokenizer(prompts, add_special_tokens=special_tokens)["input_ids"])
    rows = min(batch_size, len(prompts) * n)
    elt = next(model.parameters()).element_size()

    per_row = sample_bytes(model.config, 1, longest, max_new_tokens, elt)  # the estimate is linear in rows
    if rows * per_row <= free:
        return
    fit = free // per_row
    advice = f"use --batch-size {fit} or less" if fit else "lower --max-new-tokens"
    raise UserError(f"--batch-size {batch_size}: {rows} rows of up to {longest} + {max_new_tokens} tokens need "
                    f"about {rows * per_row / 2**30:.1f} GiB for the KV cache and attention, and {device} has "
                    f"{free / 2**30:.1f} GiB free: {advice}")


@torch.no_grad()
def generate_embedded(model, tokenizer, prompts: list[str], n: int = 1, temperature: float = 0.0,
                      max_new_tokens: int = 1024, batch_size: int = 32, seed: int = 0,
                      special_tokens: bool = True) -> list[list[str]]:
    """n responses per prompt with the trainer's sampler (aepo.embedded.sampler.sample).
    Returns a list (one per prompt) of n decoded responses. special_tokens=False: the prompts hold
    them already (a chat template's text)."""
    from aepo.embedded.sampler import sample
    from aepo.tasks.responses import response_texts, stop_ids

    device = next(model.parameters()).device
    stops = stop_ids(tokenizer, model.generation_config)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    generator = torch.Generator(device=device).manual_seed(seed)
    rows = [p for p in prompts for _ in range(n)]  # prompt i's samples at rows i*n .. i*n+n-1
    texts: list[str] = []
    for start in range(0, len(rows), batch_size):
        enc = tokenizer(rows[start : start + batch_size], return_tensors="pt", padding=True,
                        add_special_tokens=special_tokens)
        b = enc.input_ids.shape[0]
        out = sample(model, enc.input_ids.to(device), enc.attention_mask.to(device),
                     torch.full((b,), max(temperature, 1e-6)), max_new_tokens, stops, pad_id,
                     generator=generator, greedy=temperature == 0)
        texts += response_texts(tokenizer, out.response_ids, stops)  # as the trainer's rewards read them
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
        raise UserError("the vllm backend needs vLLM: pip install vllm") from None
    return LLM(model=str(model_dir_of(model_dir)), seed=seed)


def generate_vllm(llm, prompts: list[str], n: int = 1, temperature: float = 0.0,
                  max_new_tokens: int = 1024, seed: int = 0) -> list[list[str]]:
    """n responses per prompt from a `vllm_engine`."""
    from vllm import SamplingParams

    params = SamplingParams(n=n, temperature=temperature, max_tokens=max_new_tokens, seed=seed)
    return [[o.text for o in r.outputs] for r in llm.generate(prompts, params)]
