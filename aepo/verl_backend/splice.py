"""AEPO's batch surgery on verl's DataProto: add the temperature groups to a generation batch,
split them off again, and build the update batch from the core's `Splice`.

The decisions (which rows, which advantage) come from `aepo.core.assembly`, the same code the
embedded trainer runs; this module only moves rows. Shapes: B_m main rows, B_x extra rows
(P_x prompts x G), T response tokens.
"""

from __future__ import annotations

import numpy as np
import torch
from verl import DataProto

from aepo.core.assembly import Splice, minibatches
from aepo.verl_backend.translate import TEMPERATURE_COLUMN

ENTROPY_COLUMN = "aepo_token_entropy"  # (B, T) T = 1 token entropy kept from the old-log-prob pass


def with_extra_groups(gen_batch: DataProto, extra_prompts: int, group_size: int, temperature: float) -> DataProto:
    """[main rows; a copy of the first `extra_prompts` groups] for ONE rollout call.

    gen_batch: B_m rows, repeated-interleaved (each prompt's G rows are contiguous).
    Returns B_m + P_x * G rows; the copies carry `temperature` in TEMPERATURE_COLUMN, the main rows
    NaN (the agent loop, verl's default loop in a toolkit run, reads it). gen_batch is left as it was.
    """
    b_m, b_x = len(gen_batch), extra_prompts * group_size
    if b_x > b_m:
        raise ValueError(f"{extra_prompts} extra prompts x {group_size} exceed the {b_m}-row batch")
    extra = gen_batch.select_idxs(np.arange(b_x))
    gen_batch.non_tensor_batch[TEMPERATURE_COLUMN] = np.full(b_m, np.nan)
    extra.non_tensor_batch[TEMPERATURE_COLUMN] = np.full(b_x, float(temperature))
    combined = DataProto.concat([gen_batch, extra])
    gen_batch.non_tensor_batch.pop(TEMPERATURE_COLUMN)
    return combined


def split_generated(output: DataProto, num_main: int) -> tuple[DataProto, DataProto]:
    """Undo `with_extra_groups` on the rollout's output: (main rows, extra rows), the column dropped."""
    output.non_tensor_batch.pop(TEMPERATURE_COLUMN, None)
    return output.slice(0, num_main), output.slice(num_main, None)


def sequence_values(token_values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T) per-token values of an outcome quantity -> (B,) per response: their masked sum.

    A score sits on one token (verl puts it on the last response token), so the sum is the score.
    """
    return (token_values * mask).sum(dim=-1)


def sequence_advantages(advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T) GRPO advantages, the same scalar on every response token -> (B,)."""
    return sequence_values(advantages, mask) / mask.sum(dim=-1).clamp(min=1)


def verl_update_rows(splice: Splice, num_main: int, num_extra: int, add_mode: bool, alpha: float,
                     num_minibatches: int, reinforce_denom: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of [main; extra] for verl's update, in verl's mini-batch order, and each row's advantage.

    replace mode: splice.rows and splice.advantages as they are (B_m rows; PPO-clip on all).
    add mode: verl has one loss for every row and cuts the batch into n consecutive mini-batches of
    M = (B_m + B_x) / n rows, PPO-clip aggregated seq-mean-token-mean over the M rows of each. The
    embedded trainer's minibatch loss (aepo.core.assembly.minibatches, the whole batch's
    denominators over n) is

        L_k = (n / B_m) sum_{main in k} l_i(A_i) + alpha (n / D_x) sum_{kept in k} l_i(A_i)    (Eq. 2)

    with D_x the REINFORCE normaliser (all N_x temperature samples, or the kept ones). At ratio 1
    the gradient of -A' r / M equals that of -A w for any row, so L_k is carried by

        A'_main = A_i * M n / B_m,    A'_kept = alpha * A_i * M n / D_x,    A'_pad = 0,

    where the pads are the extra rows that were not kept. Each mini-batch takes its share of the
    main rows (B_m / n: P is a multiple of n), of the kept rows, and pads up to M rows, so no
    mini-batch is all REINFORCE or all GRPO and the update batch always has B_m + B_x rows. After
    the first mini-batch the ratio moves and verl clips the REINFORCE rows as PPO rows (the
    embedded trainer does not clip them).
    """
    if not add_mode:
        return splice.rows, splice.advantages
    n = num_minibatches
    m = (num_main + num_extra) // n
    rf = splice.reinforce
    adv = splice.advantages.clone()
    adv[~rf] = adv[~rf] * m * n / max(int((~rf).sum()), 1)
    adv[rf] = adv[rf] * alpha * m * n / reinforce_denom  # A = R = 1 (or the ablation's GRPO A)
    used = set(splice.rows.tolist())
    pads = iter([num_main + j for j in range(num_extra) if num_main + j not in used])
    rows: list[int] = []
    advs: list[float] = []
    for idx in minibatches(rf, n):  # indices into the splice's rows
        fill = m - len(idx)
        rows += splice.rows[idx].tolist() + [next(pads) for _ in range(fill)]
        advs += adv[idx].tolist() + [0.0] * fill
    return torch.tensor(rows, dtype=torch.long), torch.tensor(advs, dtype=adv.dtype)


def update_batch(main: DataProto, extra: DataProto, rows: torch.Tensor, advantages: torch.Tensor) -> DataProto:
    """Select `rows` of [main; extra] and give each its advantage on every response token.

    Only the tensor and non-tensor keys that both halves hold travel; `advantages` and
    `returns` are rewritten from `advantages`.
    """
    keys = sorted(set(main.batch.keys()) & set(extra.batch.keys()))
    non_tensor = sorted(set(main.non_tensor_batch) & set(extra.non_tensor_batch))
    both = DataProto.concat([main.select(batch_keys=keys, non_tensor_batch_keys=non_tensor),
                             extra.select(batch_keys=keys, non_tensor_batch_keys=non_tensor)])
    out = both.select_idxs(rows.numpy())
    mask = out.batch["response_mask"].float()
    token_adv = advantages.to(mask.dtype)[:, None] * mask  # (B_u,) -> (B_u, T)
    out.batch["advantages"] = token_adv
    out.batch["returns"] = token_adv.clone()
    out.meta_info = {**main.meta_info, "global_token_num": out.batch["attention_mask"].sum(-1).tolist()}
    return out
