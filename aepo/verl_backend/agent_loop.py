"""A single-turn agent loop that samples each row at its own temperature.

verl builds one set of sampling params per rollout call and the vLLM/SGLang server builds one
`SamplingParams` per request, so a row-level override here lets AEPO's temperature groups go out
in the SAME rollout call as the main batch. A toolkit run makes this verl's default agent loop;
only the trainer's temperature groups carry the column (`splice.with_extra_groups`), so the
main rows and validation keep verl's sampling params (validation: `val_kwargs`).
"""

from __future__ import annotations

import math
from typing import Any

from verl.experimental.agent_loop.agent_loop import register
from verl.experimental.agent_loop.single_turn_agent_loop import SingleTurnAgentLoop

from aepo.verl_backend.translate import AGENT_NAME, TEMPERATURE_COLUMN


def row_sampling_params(sampling_params: dict[str, Any], temperature: Any) -> dict[str, Any]:
    """The request's sampling params with this row's temperature, if it has one (not None/NaN)."""
    if temperature is None or math.isnan(float(temperature)):
        return sampling_params
    return {**sampling_params, "temperature": float(temperature)}


@register(AGENT_NAME)
class TemperatureAgentLoop(SingleTurnAgentLoop):
    def __init__(self, *args: Any, hf_model_type: str | None = None, **kwargs: Any):
        config = kwargs["trainer_config"].config
        if config.get("aepo", {}).get("generic_token_builder", False):
            # verl picks a token layout by model_type (a Qwen2 model gets the Qwen one, which needs
            # a newline token); the tiny lab's character tokenizer has none, so use verl's generic one
            hf_model_type = None
        super().__init__(*args, hf_model_type=hf_model_type, **kwargs)

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any):
        temperature = kwargs.pop(TEMPERATURE_COLUMN, None)
        return await super().run(row_sampling_params(sampling_params, temperature), **kwargs)
