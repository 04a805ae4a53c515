"""Checkpoints of the embedded trainer: model (safetensors), optimizer and RNG
(torch.load weights_only=True), trainer state (JSON: step, controller; written last, so its
presence marks a complete checkpoint).

A save writes RUN_DIR/.checkpoint.tmp, then swaps it in for RUN_DIR/checkpoint through
.checkpoint.old; `aepo.rundir.settle_checkpoint` takes the newest complete one of the three
whatever a kill between two of these file operations left.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from aepo.rundir import CHECKPOINT, CHECKPOINT_OLD, CHECKPOINT_TMP, TRAINER_STATE, RunDirError

OPTIMIZER = "optimizer.pt"


def _between_operations(name: str) -> None:
    """Called between the file operations of a save (tests put a kill here)."""


def save_checkpoint(run_dir: Path, model, tokenizer, optimizer, state: dict[str, Any]) -> Path:
    final, tmp, old = run_dir / CHECKPOINT, run_dir / CHECKPOINT_TMP, run_dir / CHECKPOINT_OLD
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    _between_operations("model")
    tokenizer.save_pretrained(tmp)
    _between_operations("tokenizer")
    # sampling and prompt order draw from generators seeded by (seed, step), so the global
    # torch RNG is the only other random state
    torch.save({"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()}, tmp / OPTIMIZER)
    _between_operations("optimizer")
    (tmp / TRAINER_STATE).write_text(json.dumps(state, indent=2))  # last: the checkpoint is complete
    _between_operations("state")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
        _between_operations("final -> old")
    os.replace(tmp, final)
    _between_operations("tmp -> final")
    shutil.rmtree(old, ignore_errors=True)
    _between_operations("old removed")
    return final


def load_optimizer(run_dir: Path, optimizer) -> None:
    path = run_dir / CHECKPOINT / OPTIMIZER
    try:
        blob = torch.load(path, weights_only=True, map_location="cpu")
        optimizer.load_state_dict(blob["optimizer"])
        torch.set_rng_state(blob["torch_rng"])
    except Exception as e:  # a truncated or foreign file: RuntimeError, EOFError, KeyError, ...
        msg = " ".join(str(e).split())[:120]
        raise RunDirError(f"{path} is damaged ({type(e).__name__}: {msg}): move {run_dir / CHECKPOINT} away "
                          "to start the run over") from None


def finite_weights(model) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())
