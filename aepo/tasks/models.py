"""Where a run's starting model comes from: a named tiny-lab start, a local directory, or a hub id."""

from __future__ import annotations

from pathlib import Path

from aepo.config import ConfigError
from aepo.rundir import model_dir_of


def resolve_model_dir(name: str, log=print) -> str:
    """'tiny' / 'tiny-weak' -> the shipped tiny-lab start; 'smollm2-135m' -> SmolLM2-135M-Instruct
    from its Python package, converted once (aepo/tasks/smollm2.py); a path must exist (a model
    directory, or a run directory: its checkpoint, aepo.rundir.model_dir_of); else a hub id."""
    from aepo.tasks import smollm2, tinylab

    if name in tinylab.SPECS:
        return str(tinylab.tiny_model_path(name, log=log))
    if name == smollm2.NAME:
        return str(smollm2.model_path(log=log))
    p = Path(name).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise ConfigError(f"model path {p} has no config.json (not a Hugging Face model directory)")
        return str(model_dir_of(p))  # a model directory as is; a training run's checkpoint
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise ConfigError(f"model path does not exist: {name}")
    return name  # a hub id such as Qwen/Qwen2.5-Math-7B (needs network or a local HF cache)


def named_start_dir(name: str, log=print) -> Path | None:
    """The directory of a named start ('tiny', 'tiny-weak', ..., 'smollm2-135m'); None for any other name."""
    from aepo.tasks import smollm2, tinylab

    if name in tinylab.SPECS or name == smollm2.NAME:
        return Path(resolve_model_dir(name, log=log))
    return None
