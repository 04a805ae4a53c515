"""Shared fixtures. The tiny-lab model is built once per machine (cached under $AEPO_CACHE)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
SHARED_DATA = Path(os.environ.get("AEPO_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    from aepo.tasks.tinylab import tiny_model_path

    return tiny_model_path("tiny", log=lambda *_: None)
