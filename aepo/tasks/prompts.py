"""Training prompts and rewards: the tiny lab, or a JSONL/parquet math prompt file.

A task is a list of items {"problem", "answer"} plus a binary reward(answer, response).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from aepo.config import ConfigError, DataConfig
from aepo.rundir import read_jsonl
from aepo.tasks import arith, tinylab


@dataclass
class Task:
    name: str
    train: list[dict[str, str]]  # rows {"problem": prompt text, "answer": gold}
    heldout: list[dict[str, str]]  # in-training validation rows (may be empty)
    reward: Callable[[str, str], float]  # (gold answer, response text) -> 0.0 | 1.0
    template: str  # "{problem}" for the tiny lab


def uses_chat(tokenizer, setting: str) -> bool:
    """Whether prompts go through the tokenizer's chat template (data.chat_template: auto | always | never)."""
    has = bool(getattr(tokenizer, "chat_template", None))
    if setting == "always" and not has:
        raise ConfigError("the model's tokenizer has no chat template (data.chat_template=always and aepo eval "
                          "--template chat need an instruct model's): use data.chat_template=auto or another --template")
    return has and setting != "never"


def prompt_texts(tokenizer, template: str, problems: list[str], chat: bool) -> list[str]:
    """The prompt strings: template.format(problem=...), each as one user turn of the chat template
    with the assistant's generation prompt when `chat` (tokenize them without special tokens)."""
    texts = [template.format(problem=p) for p in problems]
    if not chat:
        return texts
    return [tokenizer.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True, tokenize=False)
            for t in texts]


def math_reward(answer: str, response: str) -> float:
    """1.0 if the response's final \\boxed{} answer equals the gold (math-verify)."""
    from aepo.tasks.grading import grade

    return float(grade(response, answer))


def read_rows(path: Path) -> list[dict]:
    """Rows of a local JSONL or parquet file, with one-line errors for missing/malformed files."""
    if not path.is_file():
        raise ConfigError(f"data file not found: {path}")
    if path.suffix == ".parquet":
        import pandas as pd

        try:
            return pd.read_parquet(path).to_dict("records")
        except Exception as e:
            raise ConfigError(f"malformed parquet file {path}: {type(e).__name__}") from None
    return read_jsonl(path)


def load_prompt_file(data: DataConfig) -> list[dict[str, str]]:
    path = Path(data.train_file)
    rows = read_rows(path)
    if not rows:
        raise ConfigError(f"data file {path} has no rows")
    items = []
    for i, row in enumerate(rows):
        if data.prompt_key not in row or data.answer_key not in row:
            raise ConfigError(f"row {i} of {path} lacks '{data.prompt_key}' or '{data.answer_key}'")
        items.append({"problem": str(row[data.prompt_key]), "answer": str(row[data.answer_key])})
    return items


def load_task(data: DataConfig, model_dir: Path) -> Task:
    """The tiny lab for a tiny-lab model without a prompt file; the generated arithmetic task for
    data.train_file=arith (each problem carries its own instruction); the math task otherwise."""
    if data.train_file == arith.NAME:
        return Task(arith.NAME, arith.items("train"), arith.items("heldout"), math_reward, "{problem}")
    if data.train_file:
        return Task("math", load_prompt_file(data), [], math_reward, data.prompt_template)
    spec = tinylab.load_spec(model_dir)
    if spec is None:
        raise ConfigError("a non-tiny-lab model needs prompts: --set data.train_file=PATH (a JSONL/parquet file) or data.train_file=arith")
    return Task("tinylab", tinylab.tinylab_items(spec, "train"), tinylab.tinylab_items(spec, "heldout"),
                tinylab.reward, "{problem}")
