"""Run records: config.json, metrics.jsonl, result.json, and W&B when enabled.

The local files are the record of truth; W&B is a mirror that may fail without losing them.
No secret (W&B API key, environment) is ever written.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("aepo", "torch", "transformers", "optuna", "wandb", "math-verify", "verl")


def git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance() -> dict[str, Any]:
    return {"git_sha": git_sha(), "versions": package_versions(), "argv": sys.argv}


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Records of a metrics.jsonl; a torn last line (killed writer) is skipped."""
    p = Path(path)
    if not p.is_file():
        return []
    rows = []
    for line in p.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def truncate_metrics(path: Path, last_step: int) -> None:
    """Keep only records with step <= last_step (they are recomputed on resume)."""
    keep = [r for r in read_metrics(path) if r.get("step", 0) <= last_step]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
    os.replace(tmp, path)


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
        self.metrics_path = run_dir / "metrics.jsonl"
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
