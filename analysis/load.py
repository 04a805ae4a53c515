"""Runs into tidy pandas frames, from a sweep directory, run directories, or a W&B project.

Every source is first read into `Run` records (the same shape whatever the source), then
`frames(runs)` builds three tidy frames:

- `runs`: one row per run. run_id, method, entropy_target (NaN for methods without a target),
  variant, condition, start, seed, alpha, mode, steps (budget), steps_done, status, excluded.
  A condition is every setting but the start and the seed: `variant` holds the settings other
  than the target that vary between runs of one method (e.g. "a=1.0" where a sweep varies
  alpha; "" where nothing else varies), and `condition` is method, target and variant ("aepo
  H=0.50 a=1.0"). `start` is the pretrained model a run began from (`model.name_or_path`; a
  path by its last part); builds of one recipe (tiny, tiny-b2, tiny-b3) are one level of a
  condition, different recipes (tiny, tiny-weak) different conditions (`lab=` in the variant).
  Intervals are over the seeds of one condition, hierarchical over its starts when it has
  several (analysis.stats); runs of several conditions are never pooled.
- `steps`: one row per run and logged step. The id columns of `runs`, `step`, and every metric
  key of metrics.jsonl as its own column (`actor/entropy`, `critic/score/mean`,
  `val/tinylab/accuracy`, ...); a metric not logged at a step is NaN.
- `benchmarks`: one row per run, benchmark and point. The id columns, `benchmark`, `source`
  ("eval": an `aepo eval` summary of the final checkpoint; "val": the in-training held-out
  validation), `point` ("final", or "best" over the validations, for "val" only), and the
  scores `greedy` (T = 0 accuracy), `pass@1` (sampled, mean over k samples), `pass@k` and `k`.
  A score that a source did not measure is NaN.

For baselines (grpo, entropy_reg, entropy_adv) the trainer still logs `controller/target`, but
it means nothing: only the AEPO family and `entropy_adaptive` have an entropy target, so
`entropy_target` is NaN for the others and analyses group by method first. `runs` also holds
`controller` (the AEPO family's `algo.controller`; runs recorded before controllers existed
ran the paper's `bang_bang`; None for methods without temperature samples).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from aepo.config import SWEEP_AXES
from aepo.errors import UserError
from aepo.methods import ABLATIONS, AEPO_FAMILY, BASELINES, METHODS, TARGETED  # noqa: F401 (re-exported)
from aepo.rundir import CONFIG, METRICS, RESULT, is_number, machine_label, read_json, read_metrics

METHOD_ORDER = (*BASELINES, *AEPO_FAMILY)  # the paper's methods, in the order of its tables
METHOD_NAMES = {name: m.label for name, m in METHODS.items()}  # display names, tables and figures alike
ID_COLUMNS = ("run_id", "method", "entropy_target", "variant", "condition", "start", "seed")
# config fields that are bookkeeping, not part of a condition (dotted paths of the RunConfig dict)
ENTROPY_KEY = "actor/entropy"
NOT_SETTINGS = ("seed", "out", "wandb", "wandb_project", "wandb_group", "threads", "save_every",
                "algo.entropy_target", "algo.method", "model.name_or_path")  # the start is its own level
# short tags of the sweep axes, for variant labels (the run ids' tags) and the start's recipe
TAGS = {"recipe": "lab", **dict(SWEEP_AXES.values())}
SCORE_COLUMNS = ("greedy", "pass@1", "pass@k", "k")


class LoadError(UserError):
    """A source cannot be read; the message is one line."""


@dataclass
class Run:
    """One run, whatever its source. `config` is the RunConfig dict (seed, steps, algo: {...})."""

    run_id: str
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    result: dict[str, Any] = field(default_factory=dict)
    evals: list[dict[str, Any]] = field(default_factory=list)  # aepo eval summary.json contents
    source: str = ""  # where it was read (a run directory's resolved path, or W&B's run path)


@dataclass
class Frames:
    runs: pd.DataFrame
    steps: pd.DataFrame
    benchmarks: pd.DataFrame

    def finished(self) -> "Frames":
        """Only the runs that finished with something to analyse (status 'finished', and at
        least one finite `actor/entropy`; `excluded` says why a finished run was left out)."""
        keep = set(self.runs.loc[(self.runs["status"] == "finished") & (self.runs["excluded"] == ""), "run_id"])
        return Frames(*(f[f["run_id"].isin(keep)].reset_index(drop=True)
                        for f in (self.runs, self.steps, self.benchmarks)))


# ---- sources ------------------------------------------------------------------------------
def read_run_dir(run_dir: str | Path) -> Run:
    """A run directory written by `aepo train`: config.json, metrics.jsonl, result.json, and any
    `eval*/summary.json` written by `aepo eval`. A damaged record is a one-line LoadError naming
    the file; a damaged result.json or eval summary only keeps the run out of the analysis."""
    d = Path(run_dir)
    if not (d / CONFIG).is_file():
        raise LoadError(f"{d} is not a run directory (no config.json)")
    try:
        cfg = json.loads((d / CONFIG).read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LoadError(f"{d / CONFIG}: not valid JSON text ({type(e).__name__})") from None
    config = cfg.get("config", cfg) if isinstance(cfg, dict) else None
    if not isinstance(config, dict) or not isinstance(config.get("algo", {}), dict):
        raise LoadError(f"{d / CONFIG}: not a run record (expected {{\"config\": {{...}}}}); move the directory away")
    metrics = []
    for i, row in enumerate(read_metrics(d / METRICS), start=1):
        if not is_number(row.get("step")) or int(row["step"]) != row["step"]:
            raise LoadError(f"{d / METRICS}: record {i} has no integer 'step'")
        metrics.append({k: v for k, v in row.items() if is_number(v)})
    result = read_json(d / RESULT)
    result = result if isinstance(result, dict) else {"status": "running" if result is None else "damaged"}
    evals = [s for p in sorted(d.glob("eval*/**/summary.json")) if _is_summary(s := read_json(p))]
    return Run(d.name, config, metrics, result, evals, str(d.resolve()))


def _is_summary(s: Any) -> bool:
    """An `aepo eval` summary.json with scores (a damaged one is left out)."""
    return (isinstance(s, dict) and isinstance(s.get("benchmarks"), dict)
            and all(isinstance(v, dict) and is_number(v.get("accuracy")) for v in s["benchmarks"].values()))


def read_sweep(sweep_dir: str | Path) -> list[Run]:
    """Every run under SWEEP_DIR/runs/ (results.parquet is not read: runs/ is the record)."""
    runs_dir = Path(sweep_dir) / "runs"
    if not runs_dir.is_dir():
        raise LoadError(f"{sweep_dir} has no runs/ directory and is not a run directory (no config.json)")
    runs = [read_run_dir(p) for p in sorted(runs_dir.iterdir()) if (p / CONFIG).is_file()]
    if not runs:
        raise LoadError(f"{runs_dir} holds no run directory")
    return runs


def read_wandb(path: str, api_factory: Callable[[], Any] | None = None) -> list[Run]:
    """Runs of a W&B project, ENTITY/PROJECT[/GROUP], through the public API.

    `api_factory` returns an object with the shape of `wandb.Api()` (tests pass a fake)."""
    parts = path.strip("/").split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise LoadError(f"--from-wandb wants ENTITY/PROJECT[/GROUP], got '{path}'")
    try:
        api = (api_factory or default_wandb_api)()
        filters = {"group": parts[2]} if len(parts) == 3 else {}
        records = [wandb_run_record(r) for r in api.runs(f"{parts[0]}/{parts[1]}", filters=filters)]
    except LoadError:
        raise
    except Exception as e:  # network, auth, unknown project: one line, never a traceback
        msg = str(e).splitlines()[0] if str(e) else ""
        raise LoadError(f"W&B unreachable or project not readable ({path}): {type(e).__name__}: {msg}") from None
    if not records:
        raise LoadError(f"W&B project {path} holds no run")
    return [run_from_wandb(r) for r in records]


def default_wandb_api() -> Any:
    import wandb

    return wandb.Api(timeout=30)


def wandb_run_record(api_run: Any) -> dict[str, Any]:
    """The plain data of one `wandb.apis.public.Run`: what `run_from_wandb` converts."""
    return {"id": api_run.id, "name": api_run.name, "state": api_run.state,
            "config": dict(api_run.config),
            "summary": {k: api_run.summary[k] for k in api_run.summary.keys()},
            "history": list(api_run.scan_history())}


def run_from_wandb(rec: dict[str, Any]) -> Run:
    """Convert a recorded W&B run {id, name, state, config, summary, history} into a Run.

    History rows carry `_step` (the trainer logs with step=record['step']) and W&B's own keys
    (`_runtime`, `_timestamp`, ...), which are dropped. Config values may come wrapped as
    {"value": v} (raw API JSON) or plain."""
    config = {k: _unwrap(v) for k, v in rec.get("config", {}).items() if not k.startswith("_")}
    metrics = []
    for row in rec.get("history", []):
        step = row.get("step", row.get("_step"))
        if step is None:
            continue
        m = {k: v for k, v in row.items() if not k.startswith("_") and k != "step" and is_number(v)}
        metrics.append({"step": int(step), **m})
    metrics.sort(key=lambda r: r["step"])
    state = {"finished": "finished", "running": "running", "crashed": "failed",
             "failed": "failed", "killed": "interrupted"}.get(rec.get("state", ""), rec.get("state", "unknown"))
    summary = {k: v for k, v in rec.get("summary", {}).items() if not k.startswith("_")}
    return Run(rec.get("name") or rec["id"], config, metrics, {**summary, "status": state})


def _unwrap(v: Any) -> Any:
    if isinstance(v, dict) and "value" in v and set(v) <= {"value", "desc"}:
        return _unwrap(v["value"])
    if isinstance(v, dict):
        return {k: _unwrap(x) for k, x in v.items()}
    return v


# ---- frames -------------------------------------------------------------------------------
def condition_label(method: str, target: float, variant: str = "") -> str:
    """'grpo', 'aepo H=0.50', or 'aepo H=0.50 a=1.0' where a sweep varies alpha too."""
    label = f"{method} H={target:.2f}" if method in TARGETED and not math.isnan(target) else method
    return f"{label} {variant}".strip()


def flat_settings(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'algo.alpha': 2.0, ...} of a RunConfig dict, bookkeeping fields (NOT_SETTINGS) left out."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_settings(v, key + "."))
        elif key not in NOT_SETTINGS:
            out[key] = json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v
    return out


def start_of(config: dict[str, Any]) -> str:
    """The pretrained start of a run: its model's name (a path by its last part)."""
    model = config.get("model")
    name = str(model.get("name_or_path", "unknown")) if isinstance(model, dict) else "unknown"
    return Path(name).name or name


def recipe_of(start: str) -> str:
    """The recipe a start was built from: 'tiny-b2' -> 'tiny' (shipped builds of one recipe differ in
    their build seed only, aepo/tasks/tinylab.py); any other start is its own recipe."""
    return re.sub(r"-b\d+$", "", start)


def variants(runs: list[Run], methods: list[str]) -> list[str]:
    """Each run's variant: the settings (not target, not seed) that differ between runs of its
    method, the start's recipe among them (builds of one recipe are one level, `start`; starts of
    different recipes, say tiny and tiny-weak, are different conditions). A setting a run leaves
    unset (None, e.g. the end of a schedule it does not have) is left out of its label."""
    settings = [{**flat_settings(r.config), "recipe": recipe_of(start_of(r.config))} for r in runs]
    varying: dict[str, list[str]] = {}
    for m in set(methods):
        rows = [s for s, mm in zip(settings, methods) if mm == m]
        keys = sorted({k for s in rows for k in s})
        varying[m] = [k for k in keys if len({repr(s.get(k)) for s in rows}) > 1]
    out = []
    for s, m in zip(settings, methods):
        parts = [f"{TAGS.get(k, k.split('.')[-1])}={_fmt(s[k])}" for k in varying[m] if s.get(k) is not None]
        out.append(" ".join(parts))
    return out


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def run_row(run: Run) -> dict[str, Any]:
    """The `runs` frame row of one run (its variant is set by `frames`, which sees all runs)."""
    algo = run.config.get("algo", {})
    method = algo.get("method", run.result.get("method", "unknown"))
    method = method if isinstance(method, str) else "unknown"
    target = algo.get("entropy_target", run.result.get("entropy_target"))
    target = float(target) if method in TARGETED and is_number(target) else math.nan
    seed, steps = run.config.get("seed", run.result.get("seed", -1)), run.config.get("steps")
    steps_done = max((int(r["step"]) for r in run.metrics), default=0)
    finite = any(math.isfinite(r.get(ENTROPY_KEY, math.nan)) for r in run.metrics)
    return {"run_id": run.run_id, "method": method, "entropy_target": target, "variant": "",
            "condition": condition_label(method, target),
            "controller": algo.get("controller", "bang_bang") if method in AEPO_FAMILY else None,
            "pistar": algo.get("target_distribution", "temperature") if method in AEPO_FAMILY else None,
            "start": start_of(run.config),
            "seed": int(seed) if is_number(seed) else -1,
            "alpha": algo.get("alpha", math.nan), "mode": algo.get("mode"),
            "steps": int(steps) if is_number(steps) else steps_done, "steps_done": steps_done,
            "status": run.result.get("status", "unknown"),
            "machine": machine_label(run.result.get("machine")),
            "excluded": "" if finite else "no finite actor/entropy"}


def frames(runs: Iterable[Run]) -> Frames:
    """The three tidy frames of a list of runs (see the module docstring)."""
    runs = list(runs)
    rows = [run_row(r) for r in runs]
    for row, v in zip(rows, variants(runs, [row["method"] for row in rows])):
        row.update(variant=v, condition=condition_label(row["method"], row["entropy_target"], v))
    ids = [{k: r[k] for k in ID_COLUMNS} for r in rows]
    runs_df = pd.DataFrame(rows)
    step_rows = [{**i, **m} for run, i in zip(runs, ids) for m in run.metrics]
    steps_df = pd.DataFrame(step_rows) if step_rows else pd.DataFrame(columns=[*ID_COLUMNS, "step"])
    steps_df = steps_df.sort_values(["run_id", "step"]).reset_index(drop=True)
    bench_rows = [{**i, **b} for run, i in zip(runs, ids) for b in benchmark_rows(run)]
    bench_df = pd.DataFrame(bench_rows, columns=[*ID_COLUMNS, "benchmark", "source", "point", *SCORE_COLUMNS])
    return Frames(runs_df, steps_df, bench_df)


def benchmark_rows(run: Run) -> list[dict[str, Any]]:
    """Score rows of one run: its in-training validations and its `aepo eval` summaries."""
    return [*val_rows(run.metrics), *eval_rows(run.evals)]


def val_rows(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Final and best in-training validation scores per benchmark from `val/<b>/...` keys:
    accuracy is greedy, mean@k is sampled pass@1, pass@k is pass@k."""
    out = []
    benches = sorted({k.split("/")[1] for r in metrics for k in r if k.startswith("val/")})
    for b in benches:
        cols: dict[str, list[float]] = {}
        k = math.nan
        for key in sorted({key for r in metrics for key in r if key.startswith(f"val/{b}/")}):
            name = key.split("/", 2)[2]
            score = _val_score_name(name)
            if score is None:
                continue
            if score != "greedy":
                k = float(re.findall(r"\d+", name)[0])
            cols[score] = [r[key] for r in metrics if key in r and r[key] is not None]
        for point, pick in (("final", lambda v: v[-1]), ("best", max)):
            out.append({"benchmark": b, "source": "val", "point": point, "k": k,
                        **{s: (pick(v) if v else math.nan) for s, v in cols.items()}})
    return out


def _val_score_name(name: str) -> str | None:
    if name == "accuracy":
        return "greedy"
    if re.fullmatch(r"mean@\d+", name):
        return "pass@1"
    if re.fullmatch(r"pass@\d+", name):
        return "pass@k"
    return None


def eval_rows(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows from `aepo eval` summary.json files. A greedy evaluation (temperature 0) gives
    `greedy`; a sampled one gives `pass@1` (its avg@K) and `pass@k` for the largest k. Several
    summaries of one run (say a greedy and a sampled one) merge into one row per benchmark."""
    merged: dict[str, dict[str, Any]] = {}
    for s in summaries:
        temp = float(s.get("settings", {}).get("temperature", 0.0))
        for b, sc in s.get("benchmarks", {}).items():
            row = merged.setdefault(b, {"benchmark": b, "source": "eval", "point": "final"})
            if temp <= 0:
                row["greedy"] = sc["accuracy"]
            else:
                row["pass@1"] = sc["accuracy"]
                ks = [int(k[5:]) for k in sc if k.startswith("pass@")]
                if ks:
                    row["pass@k"], row["k"] = sc[f"pass@{max(ks)}"], float(max(ks))
    return list(merged.values())


def load(sweep_dirs: str | Path | Iterable[str | Path] | None = None, run_dirs: Iterable[str | Path] = (),
         wandb_path: str | None = None) -> Frames:
    """Frames from any mix of sources (one sweep directory or several; a run directory among them,
    as a shell glob `SWEEP/runs/*__s[012]` gives, is one run). The same run given twice
    (one source) counts once; two runs that share an id but come from different places (two sweeps
    with one grid, say) are both kept, each id prefixed with the folder above its runs/ (or its own
    parent)."""
    runs: list[Run] = []
    if isinstance(sweep_dirs, (str, Path)):
        sweep_dirs = [sweep_dirs]
    for d in sweep_dirs or ():  # a run directory given where a sweep was expected is read as a run
        is_run = (Path(d) / CONFIG).is_file() and not (Path(d) / "runs").is_dir()
        runs += [read_run_dir(d)] if is_run else read_sweep(d)
    runs += [read_run_dir(d) for d in run_dirs]
    if wandb_path:
        runs += read_wandb(wandb_path)
    if not runs:
        raise LoadError("no runs: give a sweep directory, --runs or --from-wandb")
    seen: set[tuple[str, str]] = set()
    unique = [r for r in runs if not ((r.run_id, r.source) in seen or seen.add((r.run_id, r.source)))]
    counts: dict[str, int] = {}
    for r in unique:
        counts[r.run_id] = counts.get(r.run_id, 0) + 1
    for r in unique:
        if counts[r.run_id] > 1 and r.source:
            parent = Path(r.source).parent
            r.run_id = f"{(parent.parent if parent.name == 'runs' else parent).name}/{r.run_id}"
    return frames(unique)
