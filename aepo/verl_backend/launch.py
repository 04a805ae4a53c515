"""Run one toolkit config on verl: prepare the inputs, launch verl in a child process, and leave
the same records an embedded run leaves (config.json, metrics.jsonl, result.json) beside
verl's own (verl.log, verl_metrics*.jsonl, checkpoints/).

Imports nothing from verl, so `--dry-run` works on a machine without it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

from aepo.config import ConfigError, RunConfig
from aepo.glossary import is_known
from aepo.verl_backend.translate import VerlPaths, check_for_verl, command, shell_line

INSTALL_HINT = "the verl backend needs verl: pip install 'aepo[verl]' (verl 0.9.1; vLLM for the rollout on GPUs)"
VAL_NAMES = {"aepo_tinylab": "tinylab", "aepo_math": "math"}


def planned_paths(cfg: RunConfig) -> VerlPaths:
    """Paths of a run before anything exists (for --dry-run): the model as named in the config."""
    run_dir = Path(cfg.out).resolve()
    val = run_dir / "verl_data" / "val.parquet" if cfg.verl.val_file else None
    return VerlPaths(run_dir, cfg.model.name_or_path, run_dir / "verl_data" / "train.parquet", val)


def dry_run_command(cfg: RunConfig, one_line: bool = False) -> str:
    """The command line a run would launch, with `python` for this machine's interpreter path."""
    import shlex

    cfg.validate()
    argv = ["python", *command(cfg, planned_paths(cfg))[1:]]
    return shlex.join(argv) if one_line else shell_line(argv)


def prepare_inputs(cfg: RunConfig, run_dir: Path, log: Callable[[str], None]) -> VerlPaths:
    """Resolve the model and write the prompts as verl parquet files under run_dir/verl_data."""
    from aepo.tasks.models import resolve_model_dir
    from aepo.tasks.prompts import load_prompt_file, load_task
    from aepo.verl_backend.data import TINYLAB_CHAT_TEMPLATE, write_verl_parquet

    model_dir = resolve_model_dir(cfg.model.name_or_path, log=log)
    task = load_task(cfg.data, Path(model_dir))
    source = "aepo_tinylab" if task.name == "tinylab" else "aepo_math"
    data_dir = run_dir.resolve() / "verl_data"
    train = write_verl_parquet(task.train, task.template, source, data_dir / "train.parquet")
    val = None
    if cfg.verl.val_file:
        items = load_prompt_file(dataclasses.replace(cfg.data, train_file=cfg.verl.val_file))
        val = write_verl_parquet(items, task.template, source, data_dir / "val.parquet")
    elif task.heldout and cfg.eval_every > 0:
        val = write_verl_parquet(task.heldout[: cfg.eval_prompts], task.template, source, data_dir / "val.parquet")
    template = TINYLAB_CHAT_TEMPLATE if source == "aepo_tinylab" else None
    return VerlPaths(run_dir.resolve(), model_dir, train, val, template)


def toolkit_record(step: int, data: dict[str, Any]) -> dict[str, Any]:
    """One verl log record in the toolkit's names: glossary keys pass, greedy validation is renamed."""
    rec: dict[str, Any] = {"step": step}
    for key, value in data.items():
        if not isinstance(value, (int, float)):
            continue
        if key.startswith("val-core/"):  # val-core/<data_source>/reward/mean@1 (greedy by default)
            parts = key.split("/")
            if len(parts) == 4 and parts[2] == "reward" and parts[3] == "mean@1":
                key = f"val/{VAL_NAMES.get(parts[1], parts[1])}/accuracy"
        if key != "step" and is_known(key):
            rec[key] = float(value)
    return rec


def write_toolkit_metrics(run_dir: Path) -> int:
    """metrics.jsonl from every verl_metrics*.jsonl part (a resumed step's later record wins)."""
    parts = sorted(run_dir.glob("verl_metrics.*.jsonl"), key=lambda p: int(p.name.split(".")[1]))
    parts += [p for p in [run_dir / "verl_metrics.jsonl"] if p.is_file()]
    by_step: dict[int, dict[str, Any]] = {}
    for part in parts:
        for line in part.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill
                continue
            step = int(row["step"])
            if step >= 1:  # step 0 is verl's validation before training
                by_step.setdefault(step, {}).update(toolkit_record(step, row.get("data", {})))
    tmp = run_dir / "metrics.jsonl.tmp"
    tmp.write_text("".join(json.dumps(by_step[s]) + "\n" for s in sorted(by_step)))
    os.replace(tmp, run_dir / "metrics.jsonl")
    return max(by_step, default=0)


def last_error(log_path: Path) -> str:
    """The last exception line of a verl log ('ValueError: ...'), or its last line."""
    lines = [ln.strip() for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.split(":", 1)[0].split(".")[-1].endswith(("Error", "Exception"))]
    return (errors or lines or ["(empty log)"])[-1][:300]


def _keep_previous_log(run_dir: Path) -> None:
    """verl's file logger truncates its file on start: keep a resumed run's earlier part."""
    current = run_dir / "verl_metrics.jsonl"
    if current.is_file() and current.stat().st_size:
        n = len(list(run_dir.glob("verl_metrics.*.jsonl")))
        os.replace(current, run_dir / f"verl_metrics.{n}.jsonl")


def launch(cfg: RunConfig, resume: bool = False, log: Callable[[str], None] = print,
           lock: bool = True) -> dict[str, Any]:
    """Run (or resume) `cfg` on verl; returns the result record (also in result.json). The run
    directory is this process's while verl runs (`lock=False`: the caller holds it)."""
    from aepo import rundir

    cfg.validate()
    check_for_verl(cfg)
    if importlib.util.find_spec("verl") is None:
        raise ConfigError(INSTALL_HINT)
    if not lock:
        return _launch(cfg, resume, log)
    with rundir.lock(Path(cfg.out)) as mine:
        if not mine:
            raise rundir.RunDirError(f"run directory {cfg.out} is in use by another process: wait for it to end "
                                     "or choose another --out")
        return _launch(cfg, resume, log)


def _launch(cfg: RunConfig, resume: bool, log: Callable[[str], None]) -> dict[str, Any]:
    from aepo.rundir import CONFIG, RESULT, VERL_CHECKPOINTS, prepare, provenance, result_record, write_json_atomic

    run_dir, _ = prepare(cfg, resume)
    previous = json.loads((run_dir / RESULT).read_text()) if (run_dir / RESULT).is_file() else None
    if resume and previous and previous.get("status") == "finished" and previous.get("steps_done", 0) >= cfg.steps:
        return previous
    paths = prepare_inputs(cfg, run_dir, log)
    argv = command(cfg, paths)
    (run_dir / "verl_command.sh").write_text("#!/usr/bin/env bash\n" + shell_line(argv) + "\n")
    write_json_atomic(run_dir / CONFIG, {"config": cfg.to_dict(), "derived": cfg.derived(),
                                                "model_dir": paths.model, "backend": "verl",
                                                "verl_command": argv, **provenance()})
    _keep_previous_log(run_dir)
    status, error, t0 = "failed", None, time.time()
    log(f"verl: {run_dir / 'verl_command.sh'} (log: {run_dir / 'verl.log'})")
    with open(run_dir / "verl.log", "ab") as out:
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = child.wait()
            status = "finished" if rc == 0 else "failed"
            error = None if rc == 0 else f"verl exited with code {rc}: {last_error(run_dir / 'verl.log')} (log: {run_dir / 'verl.log'})"
        except KeyboardInterrupt:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait()
            status = "interrupted"
            raise
        finally:
            done = write_toolkit_metrics(run_dir)
            if status == "finished" and done < cfg.steps:
                status, error = "failed", f"verl stopped at step {done} of {cfg.steps}; see {run_dir / 'verl.log'}"
            result = result_record(run_dir, cfg, status, error, done, time.time() - t0)
            result["checkpoint"] = VERL_CHECKPOINTS
            write_json_atomic(run_dir / RESULT, result)
    return result
