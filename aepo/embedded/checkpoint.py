"""Checkpoints: model (safetensors), optimizer and RNG (torch.load weights_only=True),
trainer state (JSON: step, controller). Written to a temp dir and renamed, so a kill during a
save leaves the previous checkpoint intact."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from aepo.rundir import CHECKPOINT, TRAINER_STATE


def save_checkpoint(run_dir: Path, model, tokenizer, optimizer, state: dict[str, Any]) -> Path:
    final = run_dir / CHECKPOINT
    tmp = run_dir / f".{CHECKPOINT}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    # sampling and prompt order draw from generators seeded by (seed, step), so the global
    # torch RNG is the only other random state
    torch.save({"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()},
               tmp / "optimizer.pt")
    (tmp / TRAINER_STATE).write_text(json.dumps(state, indent=2))
    old = run_dir / f".{CHECKPOINT}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_optimizer(run_dir: Path, optimizer) -> None:
    blob = torch.load(run_dir / CHECKPOINT / "optimizer.pt", weights_only=True, map_location="cpu")
    optimizer.load_state_dict(blob["optimizer"])
    torch.set_rng_state(blob["torch_rng"])
