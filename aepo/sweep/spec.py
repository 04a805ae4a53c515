"""Sweep files: parse, validate, expand into one (run id, RunConfig) per run.

A sweep file names only what it varies (house style, example 7):

    name: smoke                  # W&B group and optuna study name (default: the file's stem)
    method: aepo                 # the method run on the grid (default aepo)
    base:                        # a RunConfig-shaped mapping, or a path to such a YAML/JSON
      steps: 300                 # file (relative to the sweep file)
      algo: {t_high: 1.5}        # every fixed value quotes its source in a comment
    axes:                        # the grid: every combination is one run
      entropy_target: [0.3, 0.5, 0.7]
      alpha: [0.06, 0.12]
      seed: [0]
    baselines: [grpo]            # run once per seed, not once per grid point

Axis names map onto RunConfig fields through `AXES` (the documented table); the run id
encodes the grid point, e.g. `aepo__H0.5__a0.06__s0`; a baseline's id carries only its seed,
e.g. `grpo__s0`. Every problem is a one-line `SweepError` raised before anything runs.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aepo.config import METHODS, SWEEP_AXES, ConfigError, RunConfig, field_value, load_config_file

AXES = SWEEP_AXES  # axis name -> (RunConfig key it sets, tag in the run id): aepo/config.py
SPEC_KEYS = ("name", "description", "method", "base", "axes", "points", "baselines", "search")
OBJECTIVES = ("greedy", "pass@1", "pass@k")  # final held-out scores a search maximises
PRUNERS = ("none", "median", "seed_median", "hyperband")
_ID_SAFE = re.compile(r"[A-Za-z0-9_.+-]+")


class SweepError(ConfigError):
    """A sweep file is malformed; the message is one line and names the file."""


@dataclass(frozen=True)
class Run:
    """One run of a sweep: its id, method, grid point and fully resolved config."""

    run_id: str
    method: str
    point: dict[str, Any]  # axis name -> value (a baseline: {"seed": s})
    config: RunConfig
    baseline: bool = False  # a baseline: runs once per seed, has no entropy target of its own


@dataclass(frozen=True)
class SearchSpec:
    """The `search:` block of a sweep file: where `aepo sweep entropy-targets --search tpe|gp` looks
    for the best entropy target (aepo/sweep/search.py)."""

    low: float  # the target range, nats
    high: float
    step: float  # targets are low + k * step, so run ids are short and a grid on that step shares them
    objective: str = "pass@1"  # the final held-out score maximised: greedy | pass@1 | pass@k
    pruner: str = "median"  # none | median | seed_median | hyperband: stops trailing runs on intermediate
    # held-out scores, never in a run's first quarter; seed_median compares a run only with runs of its seed


@dataclass
class Sweep:
    """A parsed sweep file: the runs in file order (grid first, then baselines per seed)."""

    name: str
    path: Path
    method: str
    axes: dict[str, list[Any]]
    baselines: list[str]
    runs: list[Run] = field(default_factory=list)
    search: SearchSpec | None = None
    base: RunConfig | None = None  # the base config (a search builds its runs from it)
    sweep_dir: Path = Path("sweep")

    def search_run(self, target: float, seed: int) -> Run:
        """The run of a search trial: the grid's one setting of every other axis, this target and seed
        (the same run id as a grid run at that point)."""
        point = {a: v[0] for a, v in self.axes.items() if a not in ("entropy_target", "seed")}
        point.update({"entropy_target": target, "seed": seed})
        point = {a: point[a] for a in AXES if a in point}
        return _make_run(self.method, point, self.base or RunConfig(), self.name, self.sweep_dir, False)

    def run(self, run_id: str) -> Run:
        return next(r for r in self.runs if r.run_id == run_id)

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.runs]

    @property
    def columns(self) -> list[str]:
        """Every axis a run's point may set (the grid's and the extra points'), in AXES order."""
        used = {a for r in self.runs for a in r.point}
        return [a for a in AXES if a in used or a in self.axes]

    def with_overrides(self, overrides: dict[str, Any]) -> "Sweep":
        """The same sweep with run-level fields replaced in every run (`wandb`, `threads`)."""
        if not overrides:
            return self
        runs = [dataclasses.replace(r, config=r.config.with_overrides(overrides).validate()) for r in self.runs]
        base = self.base.with_overrides(overrides) if self.base is not None else None
        return dataclasses.replace(self, runs=runs, base=base)


def format_value(value: Any) -> str:
    """Shortest text that round-trips: 0.5 -> '0.5', 1e-06 -> '1e-06', 3 -> '3'."""
    return repr(value) if isinstance(value, float) else str(value)


def run_id_for(method: str, point: dict[str, Any]) -> str:
    tags = [f"{AXES[a][1]}{format_value(point[a])}" for a in AXES if a in point]
    return "__".join([method, *tags])


def load_sweep(path: str | Path, sweep_dir: str | Path = "sweep") -> Sweep:
    """Read, validate and expand a sweep file; run dirs are `sweep_dir/runs/<run_id>`."""
    path = Path(path)
    try:
        raw = load_config_file(path)
    except ConfigError as e:
        raise SweepError(str(e)) from None
    try:
        return expand(raw, path, Path(sweep_dir))
    except SweepError:
        raise
    except ConfigError as e:
        raise SweepError(f"sweep file {path}: {e}") from None


def expand(raw: dict[str, Any], path: Path, sweep_dir: Path) -> Sweep:
    """Validate the mapping of a sweep file and build every run's config."""
    where = f"sweep file {path}"
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise SweepError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(SPEC_KEYS)})")
    name = str(raw.get("name") or path.stem)
    if not _ID_SAFE.fullmatch(name):
        raise SweepError(f"{where}: name '{name}' may hold only letters, digits and _.+-")
    method = raw.get("method", "aepo")
    if method not in METHODS:
        raise SweepError(f"{where}: unknown method '{method}' (choose from {', '.join(METHODS)})")
    base = _base_config(raw.get("base"), path)
    axes = _axes(raw.get("axes"), where, base)
    baselines = _baselines(raw.get("baselines"), where, method)

    sweep = Sweep(name=name, path=path, method=method, axes=axes, baselines=baselines,
                  search=_search(raw.get("search"), where), base=base, sweep_dir=sweep_dir)
    names = list(axes)
    for values in itertools.product(*(axes[a] for a in names)):
        sweep.runs.append(_make_run(method, dict(zip(names, values)), base, name, sweep_dir, False))
    for extra in _points(raw.get("points"), where):  # beside the grid: crossed with the axes it leaves free
        outer = [a for a in names if a not in extra]
        for values in itertools.product(*(axes[a] for a in outer)):
            point = {**extra, **dict(zip(outer, values))}
            point = {a: point[a] for a in AXES if a in point}  # the run id's tag order
            sweep.runs.append(_make_run(method, point, base, name, sweep_dir, False))
    for start in axes.get("start", [None]):  # baselines run once per start and seed
        for seed in axes["seed"]:
            point = {"seed": seed} if start is None else {"start": start, "seed": seed}
            for b in baselines:
                sweep.runs.append(_make_run(b, point, base, name, sweep_dir, True))
    ids = sweep.run_ids
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise SweepError(f"{where}: two runs share the id '{dup}'")
    return sweep


def _base_config(base: Any, path: Path) -> RunConfig:
    if base is None:
        return RunConfig()
    if isinstance(base, str):
        p = Path(base)
        base = load_config_file(p if p.is_absolute() else path.parent / p)
    if not isinstance(base, dict):
        raise SweepError(f"sweep file {path}: 'base' must be a mapping or a path to a config file")
    return RunConfig.from_dict(base)


def _axes(axes: Any, where: str, base: RunConfig) -> dict[str, list[Any]]:
    if axes is None:
        axes = {}
    if not isinstance(axes, dict):
        raise SweepError(f"{where}: 'axes' must be a mapping of axis name to a list of values")
    out: dict[str, list[Any]] = {}
    for name in axes:
        if name not in AXES:
            raise SweepError(f"{where}: unknown axis '{name}' (known: {', '.join(AXES)})")
    for name in AXES:  # table order, so run ids do not depend on the file's key order
        if name not in axes:
            continue
        values = axes[name]
        if not isinstance(values, list):
            values = [values]
        if not values:
            raise SweepError(f"{where}: axis '{name}' is empty")
        key = AXES[name][0]
        # each value as its config field's type, so that 0 and 0.0, or 0.5 and '5e-1', are one value
        values = [field_value(key, v, f"axis '{name}' value") for v in values]
        for v in values:
            if isinstance(v, str) and not _ID_SAFE.fullmatch(v):
                raise SweepError(f"{where}: axis '{name}' value '{v}' may hold only letters, digits and _.+-")
        if len(set(map(format_value, values))) != len(values):
            raise SweepError(f"{where}: axis '{name}' repeats a value ({', '.join(map(format_value, values))})")
        out[name] = values
    out.setdefault("seed", [base.seed])
    # 'seed' last, as in the run ids
    return {k: out[k] for k in AXES if k in out}


def _points(points: Any, where: str) -> list[dict[str, Any]]:
    """Extra grid points: mappings of axis to one value, each crossed with the grid's axes it does
    not set (its starts and seeds, say), e.g. an annealed target beside constant ones."""
    if points is None:
        return []
    if not isinstance(points, list) or not all(isinstance(p, dict) and p for p in points):
        raise SweepError(f"{where}: 'points' must be a list of mappings of axis name to one value")
    out = []
    for p in points:
        for a, v in p.items():
            if a not in AXES or a == "seed":
                raise SweepError(f"{where}: a point sets '{a}', which is not an axis it may set "
                                 f"(known: {', '.join(x for x in AXES if x != 'seed')})")
            if isinstance(v, str) and not _ID_SAFE.fullmatch(v):
                raise SweepError(f"{where}: point value '{v}' may hold only letters, digits and _.+-")
        out.append({a: field_value(AXES[a][0], v, f"point value '{a}'") for a, v in p.items()})
    return out


def _search(search: Any, where: str) -> SearchSpec | None:
    """search: {entropy_target: [LOW, HIGH], step: S, objective: pass@1, pruner: median}."""
    if search is None:
        return None
    if not isinstance(search, dict):
        raise SweepError(f"{where}: 'search' must be a mapping (entropy_target, step, objective, pruner)")
    unknown = sorted(set(search) - {"entropy_target", "step", "objective", "pruner"})
    if unknown:
        raise SweepError(f"{where}: search has an unknown key '{unknown[0]}' (entropy_target, step, objective, pruner)")
    rng = search.get("entropy_target")
    if not (isinstance(rng, list) and len(rng) == 2):
        raise SweepError(f"{where}: search.entropy_target must be [LOW, HIGH] in nats")
    low, high = (field_value("algo.entropy_target", v, "search.entropy_target") for v in rng)
    step = field_value("algo.alpha", search.get("step", 0.05), "search.step")  # a finite float
    if not (0 <= low < high) or step <= 0 or (high - low) / step > 1000:
        raise SweepError(f"{where}: search needs 0 <= LOW < HIGH and 0 < step with at most 1000 steps in the range, "
                         f"got [{low}, {high}] step {step}")
    objective, pruner = search.get("objective", "pass@1"), search.get("pruner", "median")
    if objective not in OBJECTIVES:
        raise SweepError(f"{where}: unknown search objective '{objective}' (choose from {', '.join(OBJECTIVES)})")
    if pruner not in PRUNERS:
        raise SweepError(f"{where}: unknown search pruner '{pruner}' (choose from {', '.join(PRUNERS)})")
    return SearchSpec(float(low), float(high), float(step), objective, pruner)


def _baselines(baselines: Any, where: str, method: str) -> list[str]:
    if baselines is None:
        return []
    if not isinstance(baselines, list):
        raise SweepError(f"{where}: 'baselines' must be a list of methods")
    for b in baselines:
        if b not in METHODS:
            raise SweepError(f"{where}: unknown baseline '{b}' (choose from {', '.join(METHODS)})")
        if b == method:
            raise SweepError(f"{where}: baseline '{b}' is the grid's own method")
    if len(set(baselines)) != len(baselines):
        raise SweepError(f"{where}: a baseline is listed twice")
    return list(baselines)


def _make_run(method: str, point: dict[str, Any], base: RunConfig, name: str, sweep_dir: Path,
              baseline: bool) -> Run:
    run_id = run_id_for(method, point)
    overrides = {AXES[a][0]: v for a, v in point.items()}
    overrides.update({"algo.method": method, "out": str(sweep_dir / "runs" / run_id), "wandb_group": name})
    try:
        cfg = base.with_overrides(overrides).validate()
    except ConfigError as e:
        raise ConfigError(f"run {run_id}: {e}") from None
    return Run(run_id=run_id, method=method, point=point, config=cfg, baseline=baseline)
