"""Prompt files in verl's RL format, and the reward verl calls on each response.

verl's RLHFDataset reads parquet rows {prompt: chat messages, data_source, reward_model:
{ground_truth}}; the toolkit's task is rows {problem, answer} plus a reward. `write_verl_parquet`
converts one to the other; `compute_score` is verl's `custom_reward_function`, dispatching on
`data_source` to the same rewards the embedded trainer uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# A chat template for the tiny lab's character tokenizer, which has none: the raw prompt after BOS.
TINYLAB_CHAT_TEMPLATE = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"

DATA_SOURCES = ("aepo_math", "aepo_tinylab")


def write_verl_parquet(items: list[dict[str, str]], template: str, data_source: str, path: Path) -> Path:
    """items: rows {"problem", "answer"}; template: "{problem}..." (the task's prompt template)."""
    import pandas as pd

    if data_source not in DATA_SOURCES:
        raise ValueError(f"unknown data source '{data_source}'")
    rows = [{
        "data_source": data_source,
        "prompt": [{"role": "user", "content": template.format(problem=it["problem"])}],
        "reward_model": {"style": "rule", "ground_truth": it["answer"]},
        "extra_info": {"index": i},
    } for i, it in enumerate(items)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path)
    return path


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: Any = None,
                  **kwargs: Any) -> float:
    """The toolkit's reward for verl: 1.0 for a right response, else 0.0. solution_str is the response
    up to its stop token with its special tokens kept (aepo.verl_backend.reward, the toolkit's reward
    manager, reads it as the embedded trainer does: aepo.tasks.responses.response_texts)."""
    if data_source == "aepo_tinylab":
        from aepo.tasks.tinylab import reward

        return reward(str(ground_truth), solution_str)
    if data_source == "aepo_math":
        from aepo.tasks.prompts import math_reward

        return math_reward(str(ground_truth), solution_str)
    raise ValueError(f"no reward for data source '{data_source}' (known: {', '.join(DATA_SOURCES)})")
