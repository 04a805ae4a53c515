"""The per-step log of a run: metrics.jsonl (aepo.rundir owns its format), mirrored to W&B.

The local files are the record of truth; W&B is a mirror that may fail without losing them.
No secret (W&B API key, environment) is ever written.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from aepo.rundir import METRICS


def wandb_mode(requested: str) -> str:
    """auto -> online when an API key is set, offline otherwise."""
    if requested == "auto":
        return "online" if os.environ.get("WANDB_API_KEY") else "offline"
    return requested


class RunLogger:
    """Appends one JSON record per step to metrics.jsonl and mirrors it to W&B."""

    def __init__(self, run_dir: Path, config: dict[str, Any], wandb: str = "off",
                 project: str = "aepo", group: str | None = None, name: str | None = None):
        self.run_dir = run_dir
        self.metrics_path = run_dir / METRICS
        self._file = open(self.metrics_path, "a", buffering=1)
        self._wandb = None
        mode = wandb_mode(wandb)
        if mode != "off":
            try:
                import wandb as wb

                os.environ.setdefault("WANDB_SILENT", "true")
                self._wandb = wb.init(project=project, group=group, name=name or run_dir.name,
                                      id=_wandb_id(run_dir), resume="allow", mode=mode,
                                      dir=str(run_dir), config=config, reinit="finish_previous")
            except Exception as e:  # W&B must never cost the local record
                warnings.warn(f"W&B disabled for this run: {type(e).__name__}: {e}")
                self._wandb = None

    def log(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        if self._wandb is not None:
            try:
                self._wandb.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])
            except Exception as e:
                warnings.warn(f"W&B log failed, continuing with local files: {e}")
                self._wandb = None

    def close(self, summary: dict[str, Any] | None = None) -> None:
        self._file.close()
        if self._wandb is not None:
            try:
                if summary:
                    self._wandb.summary.update({k: v for k, v in summary.items() if isinstance(v, (int, float, str))})
                self._wandb.finish()
            except Exception as e:
                warnings.warn(f"W&B finish failed: {e}")


def _wandb_id(run_dir: Path) -> str:
    import hashlib

    return hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:16]
