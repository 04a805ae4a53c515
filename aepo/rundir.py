"""The run directory: its layout, and every read and write of its records. Trainers, the verl
launcher, eval, sweeps and analysis all go through here.

    RUN_DIR/
      config.json        {"config": the RunConfig, "derived", "model_dir", "task", "aepo_mode", provenance}
      metrics.jsonl      one JSON object per step (keys: aepo.glossary)
      result.json        status, error, steps_done, final/best numbers, provenance (`result_record`)
      checkpoint/        embedded: model (safetensors), tokenizer, optimizer.pt, trainer_state.json
      checkpoints/       verl: global_step_N/actor/{FSDP shards, huggingface/}, latest_checkpointed_iteration.txt
      eval/summary.json  `aepo eval` of the final checkpoint (samples.jsonl beside it)
      .lock              held (flock) by the one process that works on the run (`lock`)

A run is `finished` / `failed` / `interrupted` as its result.json says, `interrupted` when it
has metrics but no result (a killed process), `pending` when it has neither.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from aepo.errors import UserError

CONFIG, METRICS, RESULT = "config.json", "metrics.jsonl", "result.json"
CHECKPOINT = "checkpoint"  # the embedded trainer's checkpoint directory
TRAINER_STATE = "trainer_state.json"  # inside CHECKPOINT: step, controller state
VERL_CHECKPOINTS = "checkpoints"  # verl's checkpoint root
EVAL_SUMMARY = Path("eval") / "summary.json"
LOCK = ".lock"
# the embedded checkpoint is written to CHECKPOINT_TMP, then swapped in through CHECKPOINT_OLD
CHECKPOINT_TMP, CHECKPOINT_OLD = f".{CHECKPOINT}.tmp", f".{CHECKPOINT}.old"
TERMINAL = ("finished", "failed", "pruned")  # pruned: stopped early by a search's pruner (aepo.sweep.search)
PACKAGES = ("aepo", "torch", "transformers", "optuna", "wandb", "math-verify", "verl")


class RunDirError(UserError):
    """The run directory holds something this call must not overwrite, or is not a run."""


# ---- files -------------------------------------------------------------------------------------
def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file of this process beside `path`, then rename it over `path`
    (a reader sees the old file or the new one; two writers never share the temporary file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # as a plain write would leave it (mkstemp makes 0600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data, indent=2, default=str))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    """A JSON record, or None when it is missing or cut short (a run killed mid-write)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def read_jsonl(path: str | Path, torn_tail_ok: bool = False) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file, one per non-blank line (the toolkit's one JSONL reader:
    prompt files, benchmark files, responses, metrics). A line that is not a JSON object is a
    UserError naming the file and line; with `torn_tail_ok` a last line cut short by a killed
    writer (no final newline) is dropped instead."""
    from aepo.config import read_utf8

    p = Path(path)
    lines = read_utf8(p).split("\n")
    rows = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if torn_tail_ok and i == len(lines):  # the last line, with no newline after it
                break
            raise UserError(f"{p}:{i}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise UserError(f"{p}:{i}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Records of a metrics.jsonl ([] when there is none); a torn last line (a killed writer) is
    dropped, any other bad line is a UserError naming the file and line."""
    p = Path(path)
    return read_jsonl(p, torn_tail_ok=True) if p.is_file() else []


def truncate_metrics(path: Path, last_step: int) -> None:
    """Keep only records with step <= last_step (they are recomputed on resume)."""
    keep = [r for r in read_metrics(path) if r.get("step", 0) <= last_step]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
    os.replace(tmp, path)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# ---- provenance and the result record ------------------------------------------------------------
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


def machine() -> dict[str, Any]:
    """What the float results depend on beyond the code and seed: the CPU model, the instruction
    set torch's kernels use, and the GPU. One run is bit-reproducible on one machine type; on
    another CPU (an Intel AVX-512 machine against an AMD one, say) its sums round differently and
    training drifts apart after some steps (measured: paper_figs/README.md)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def machine_label(m: Any) -> str:
    """'CPU (instruction set)[, GPU]' of a result record's machine, or 'not recorded' (older runs)."""
    if not isinstance(m, dict) or not isinstance(m.get("cpu"), str):
        return "not recorded"
    label = f"{m['cpu']} ({m.get('cpu_capability')})"
    return f"{label}, {m['gpu']}" if isinstance(m.get("gpu"), str) else label


def provenance() -> dict[str, Any]:
    return {"git_sha": git_sha(), "versions": package_versions(), "machine": machine(), "argv": sys.argv}


def result_record(run_dir: Path, cfg, status: str, error: str | None, steps_done: int,
                  wall: float) -> dict[str, Any]:
    """result.json: status, final / best numbers, provenance (cfg: the run's RunConfig)."""
    rows = read_metrics(Path(run_dir) / METRICS)
    res: dict[str, Any] = {"status": status, "error": error, "steps_done": steps_done, "steps": cfg.steps,
                           "wall_time_s": wall, "method": cfg.algo.method, "mode": cfg.algo.mode,
                           "entropy_target": cfg.algo.entropy_target, "alpha": cfg.algo.alpha,
                           "seed": cfg.seed, "checkpoint": CHECKPOINT, "host": socket.gethostname(),
                           "pid": os.getpid(), **provenance()}
    if rows:
        last = rows[-1]
        for k in ("actor/entropy", "critic/score/mean"):
            res[f"final/{k}"] = last.get(k)
        val_keys = sorted({k for r in rows for k in r if k.startswith("val/")})
        for k in val_keys:
            vals = [r[k] for r in rows if k in r]
            res[f"final/{k}"], res[f"best/{k}"] = vals[-1], max(vals)
        res["mean_step_s"] = sum(r["timing_s/step"] for r in rows) / len(rows)
    return res


def read_result(run_dir: Path) -> dict[str, Any] | None:
    return read_json(Path(run_dir) / RESULT)


# ---- status ----------------------------------------------------------------------------------------
def status_of(res: dict[str, Any] | None, run_dir: Path, steps: int) -> str:
    """pending | interrupted | finished | failed | pruned, from a result record already read (None: none)."""
    if res is not None:
        status = res.get("status")
        if status == "finished" and res.get("steps_done", 0) < steps:
            return "interrupted"  # finished a shorter schedule: more steps were asked for since
        return status if status in TERMINAL else "interrupted"
    return "interrupted" if (Path(run_dir) / METRICS).exists() else "pending"


def run_status(run_dir: Path, steps: int) -> str:
    """`status_of` read from the run directory alone."""
    return status_of(read_result(run_dir), run_dir, steps)


# ---- one owner ----------------------------------------------------------------------------------
@contextmanager
def lock(run_dir: Path) -> Iterator[bool]:
    """Hold an exclusive, non-blocking flock on RUN_DIR/.lock; yields False if another process
    (or another open of it) holds it. The owner (host, pid, since) is written in it for display.
    The kernel drops a flock when its holder dies, SIGKILL included, so a killed run leaves no
    stale lock. On a shared file system (several machines) flock needs NFSv4 or the like."""
    run_dir = Path(run_dir)
    make_dir(run_dir)
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        try:
            yield True
        finally:
            os.ftruncate(fd, 0)  # an empty lock file: nobody holds the run
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def is_locked(run_dir: Path) -> bool:
    """True while a live process holds the run's lock (probes by trying to take it)."""
    if not (Path(run_dir) / LOCK).exists():
        return False
    with lock(run_dir) as mine:
        return not mine


def lock_owner(run_dir: Path) -> dict[str, Any] | None:
    """Who holds (or, after a kill, last held) the run; for display only."""
    d = read_json(Path(run_dir) / LOCK)
    return d if isinstance(d, dict) else None


def make_dir(path: Path) -> Path:
    """mkdir -p with a one-line UserError when the path is a file, lies under one, or is not writable."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunDirError(f"{path} exists and is not a directory: choose another path") from None
    except NotADirectoryError:
        raise RunDirError(f"{path} lies under a file, not a directory: choose another path") from None
    except OSError as e:
        raise RunDirError(f"cannot create {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise RunDirError(f"{path} is not writable: choose another path")
    return path


@contextmanager
def output_dir(path: Path | None) -> Iterator[None]:
    """make_dir(path) for a command's output; if the command then fails (bad input found later, an
    interrupt), the directories it created that are still empty are removed: a refused command
    leaves nothing behind. A directory that existed before is never touched."""
    new = [] if path is None else [d for d in (Path(path), *Path(path).parents) if not d.exists()]  # deepest first
    if path is not None:
        make_dir(path)
    try:
        yield
    except BaseException:
        for d in new:
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        raise


@contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """SIGINT / SIGTERM -> one KeyboardInterrupt (the trainer then checkpoints); later ones are
    ignored so that a second signal cannot break the checkpoint being written. The previous
    handlers come back on exit."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # only the main thread may
        yield
        return
    fired: list[int] = []

    def handler(signum, frame):
        if not fired:
            fired.append(signum)
            raise KeyboardInterrupt

    before = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in before.items():
            signal.signal(sig, h)


# ---- the embedded checkpoint: settle what a kill left, then start or resume ------------------------------
def _state(ckpt_dir: Path) -> dict[str, Any] | None:
    """The trainer state of a checkpoint directory if it is complete (its state file, written last,
    parses and names a step), else None."""
    d = read_json(ckpt_dir / TRAINER_STATE)
    return d if isinstance(d, dict) and isinstance(d.get("step"), int) else None


def settle_checkpoint(run_dir: Path, log=print) -> dict[str, Any] | None:
    """Make RUN_DIR/checkpoint the newest complete checkpoint a kill may have left, and return its
    trainer state (None: no checkpoint).

    A save writes .checkpoint.tmp (trainer_state.json last), renames checkpoint to .checkpoint.old,
    .checkpoint.tmp to checkpoint, then deletes .checkpoint.old. Killed between any two of those,
    the newest complete one of the three is taken, the others deleted. A checkpoint/ whose state
    file does not parse was damaged by something else: that is an error, never a silent restart."""
    run_dir = Path(run_dir)
    main, tmp, old = run_dir / CHECKPOINT, run_dir / CHECKPOINT_TMP, run_dir / CHECKPOINT_OLD
    found = [(s["step"], d) for d in (main, tmp, old) if d.is_dir() and (s := _state(d)) is not None]
    if not found:
        if main.is_dir():
            raise RunDirError(f"{main / TRAINER_STATE} is missing or damaged: the checkpoint cannot be resumed; "
                              f"move {main} away to start the run over")
        for d in (tmp, old):
            shutil.rmtree(d, ignore_errors=True)
        return None
    step, best = max(found, key=lambda x: x[0])
    if best != main:
        if main.exists():
            shutil.rmtree(main)
        os.replace(best, main)
        log(f"recovered the checkpoint of step {step} from {best.name} (a save was interrupted)")
    for d in (tmp, old):
        shutil.rmtree(d, ignore_errors=True)
    return _state(main)


def read_trainer_state(run_dir: Path) -> dict[str, Any] | None:
    """The embedded checkpoint's trainer state (step, controller), or None without a checkpoint."""
    return _state(Path(run_dir) / CHECKPOINT)


def prepare(cfg, resume: bool, log=print) -> tuple[Path, dict | None]:
    """Check the run directory before anything is written; return (dir, trainer state to resume).

    Without `resume` a directory that already holds a run is refused; with it, there must be a
    run to resume, and the config must equal the saved one up to the fields that may change
    between resumes. The caller holds the directory's `lock`."""
    from aepo.config import ConfigError, RunConfig

    out = make_dir(cfg.out)
    has_record = any((out / f).exists() for f in (METRICS, RESULT, CONFIG))
    if not resume and has_record:
        raise RunDirError(f"run directory {out} already holds a run; pass --resume to continue it "
                          "or choose another --out")
    if not resume:
        return out, None
    if not has_record:
        raise RunDirError(f"nothing to resume in {out}: it holds no run (check the path, or drop --resume)")
    saved = read_json(out / CONFIG)
    if not (out / CONFIG).exists() and not (out / METRICS).exists() and not (out / CHECKPOINT).exists():
        return out, None  # a run that failed before it began (its result.json says why): start it
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
        raise RunDirError(f"cannot resume {out}: its {CONFIG} is missing or damaged")
    try:
        theirs = RunConfig.from_dict(saved["config"]).to_dict()
    except ConfigError as e:
        raise RunDirError(f"cannot resume {out}: its {CONFIG} is not a run config ({e})") from None
    mine = cfg.to_dict()
    for d in (mine, theirs):  # these may change between resumes
        for k in ("steps", "out", "wandb", "wandb_group", "save_every", "threads"):
            d.pop(k, None)
    if mine != theirs:
        diff = sorted(k for k in mine if mine[k] != theirs.get(k))
        raise RunDirError(f"--resume with a config that differs from {out / CONFIG} (in {', '.join(diff)})")
    return out, settle_checkpoint(out, log)


# ---- evaluation records and checkpoints for eval ----------------------------------------------------
def flat_scores(summary: dict[str, Any]) -> dict[str, float]:
    """{'eval/<benchmark>/<score>': value} of an eval summary.json, its average as 'eval/average/<score>'."""
    out = {f"eval/{b}/{k}": v for b, s in summary["benchmarks"].items() for k, v in s.items()}
    out.update({f"eval/average/{k}": v for k, v in summary["average"].items()})
    return out


def eval_scores(run_dir: Path) -> dict[str, float]:
    """The flat scores of RUN_DIR/eval/summary.json, or {} when the run was not evaluated."""
    summary = read_json(Path(run_dir) / EVAL_SUMMARY)
    return flat_scores(summary) if summary is not None else {}


def is_run_record(path: Path) -> bool:
    """True for a run directory's config.json (the toolkit's record), False for a model's."""
    d = read_json(path)
    return isinstance(d, dict) and "config" in d and "versions" in d


def model_dir_of(path_or_run_dir: str | Path) -> Path:
    """The Hugging Face model directory to load: a model directory as is; an embedded run's
    `checkpoint/`; a verl run's last `checkpoints/global_step_N/actor/huggingface` (the toolkit
    asks verl to save the weights there)."""
    p = Path(path_or_run_dir)
    if (p / CHECKPOINT / "config.json").is_file():
        return p / CHECKPOINT
    verl_root = p / VERL_CHECKPOINTS
    if (verl_root / "latest_checkpointed_iteration.txt").is_file():
        step = (verl_root / "latest_checkpointed_iteration.txt").read_text().strip()
        actor = verl_root / f"global_step_{step}" / "actor"
        hf = actor / "huggingface"
        if any(hf.glob("*.safetensors")) or (hf / "model.safetensors.index.json").is_file():
            return hf
        raise RunDirError(f"{p} is a verl run whose last checkpoint ({actor}) holds FSDP shards only: convert it "
                          f"with `python -m verl.model_merger merge --backend fsdp --local_dir {actor} "
                          f"--target_dir {hf}` and run aepo eval again")
    if (p / "config.json").is_file() and not is_run_record(p / "config.json"):
        return p
    raise RunDirError(f"{p} is neither a model directory (config.json) nor a run directory with a checkpoint "
                      "(checkpoint/ or verl's checkpoints/)")
