"""verl's reward manager for toolkit runs: a response is read as the embedded trainer reads it.

verl's own reward managers decode a response with skip_special_tokens, so an answer followed by
special tokens up to the length cap ('x+y<bos><bos>...') reads as the bare answer and is paid; on
the embedded backend a tiny-lab policy learned exactly that (paper_figs/README.md, "Correction").
This manager cuts each response at its first stop token and keeps the special tokens written before
it (`aepo.tasks.responses`), then scores it with the toolkit's reward (`data.compute_score`).
A toolkit run makes it verl's reward manager (translate.py); it serves the main rows, AEPO's
temperature groups and validation alike.
"""

from __future__ import annotations

import asyncio
from typing import Any

from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from aepo.tasks.responses import response_texts, stop_ids
from aepo.verl_backend.data import compute_score as toolkit_score
from aepo.verl_backend.translate import REWARD_MANAGER


def generation_config(model_path: str | None):
    """The model's generation config (its eos ids end a response, as they end vLLM's sampling), or
    None where the model directory has none."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(model_path) if model_path else None
    except (OSError, ValueError):
        return None


@register(REWARD_MANAGER)
class ResponseRewardManager(RewardManagerBase):
    def __init__(self, config, tokenizer, compute_score=None, **kwargs: Any):
        super().__init__(config, tokenizer, compute_score or toolkit_score)
        self.stops = stop_ids(tokenizer, generation_config(config.actor_rollout_ref.model.get("path")))

    async def run_single(self, data) -> dict:
        """One rollout's reward. data: a DataProto of one sequence (the last one counts, as in verl's
        managers) with `responses` (T,) and `attention_mask` over prompt and response."""
        item = data[-1:][0]
        ids = item.batch["responses"]  # (T,) padded after the response
        n = int(item.batch["attention_mask"][-ids.shape[-1]:].sum())
        row = item.non_tensor_batch

        def read_and_score() -> float:  # off the event loop, as verl's managers do (math grading can be slow)
            text = response_texts(self.tokenizer, ids[:n].unsqueeze(0), self.stops)[0]
            return float(self.compute_score(data_source=row["data_source"], solution_str=text,
                                            ground_truth=row["reward_model"]["ground_truth"],
                                            extra_info=row.get("extra_info", {})))

        score = await asyncio.get_running_loop().run_in_executor(None, read_and_score)
        return {"reward_score": score, "reward_extra_info": {"acc": score}}
