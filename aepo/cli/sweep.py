"""`aepo sweep`: grids of training runs scheduled with optuna, resumable and never run twice."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from aepo.cli.common import fail, one_line_errors

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Sweeps: grids of training runs across entropy targets, alpha and seeds.")

SUMMARY_COLUMNS = ["run_id", "status", "final_accuracy", "best_accuracy", "entropy_mean", "entropy_std",
                   "entropy_abs_err", "entropy_in_band", "wall_time_s"]


@app.callback()
def _group() -> None:
    """Sweeps: grids of training runs across entropy targets, alpha and seeds."""


@app.command("entropy-targets")
def entropy_targets(
    config: Annotated[Path, typer.Option(help="Sweep file (sweeps/*.yaml): axes, baselines, base config.")],
    out: Annotated[Path, typer.Option(help="Sweep directory: runs/<run_id>/, optuna.db, results.parquet.")],
    workers: Annotated[int, typer.Option(help="Local worker processes; the cores are split evenly between "
                                         "them (on 2 cores one worker is usually fastest).")] = 1,
    storage: Annotated[Optional[str], typer.Option(help="Optuna storage URL (default: sqlite file in --out). "
                                                   "postgresql://... lets workers on several machines share "
                                                   "one sweep (--out on a shared file system).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the run table (and each verl run's command line) and exit; "
                                          "needs no model, data or verl.")] = False,
    retry_failed: Annotated[bool, typer.Option(help="Run failed runs again (from their checkpoint).")] = False,
    wandb: Annotated[Optional[str], typer.Option(help="W&B mode for every run: auto | online | offline | off "
                                                 "(default: the sweep's base config).")] = None,
    search: Annotated[str, typer.Option(help="grid: every run of the file's axes | tpe | gp: optuna's sampler "
                                        "over the file's `search:` target range, --trials runs, with its pruner "
                                        "(aepo/sweep/search.py).")] = "grid",
    trials: Annotated[Optional[int], typer.Option(help="--search tpe|gp: trials to complete (pruned ones "
                                                  "count).")] = None,
    search_seed: Annotated[int, typer.Option(help="--search tpe|gp: the sampler's seed (its own study).")] = 0,
) -> None:
    """Run (or continue) a sweep across entropy targets H and alpha, with its baselines; or search
    the file's target range for the best entropy (--search tpe|gp --trials N).

    Re-running the same command continues the sweep: finished runs are skipped, interrupted
    runs resume from their checkpoint, failed runs are retried only with --retry-failed.
    """
    from aepo.sweep.search import SAMPLERS
    from aepo.sweep.spec import load_sweep

    if workers < 1:
        fail(f"--workers must be >= 1, got {workers}")
    if search not in SAMPLERS:
        fail(f"--search must be one of {', '.join(SAMPLERS)}, got '{search}'")
    if search == "grid" and trials is not None:
        fail("--trials is for --search tpe|gp (a grid runs every point of its axes)")
    if search != "grid" and (trials is None or trials < 1):
        fail(f"--search {search} needs --trials N (N >= 1)")
    if search != "grid" and workers != 1:
        fail("--search runs one trial at a time per command: start the same command in several terminals "
             "or machines (one --storage, one --out) to run trials side by side")
    with one_line_errors("aepo sweep"):
        overrides = {"wandb": wandb} if wandb else {}  # workers reload the sweep file: they get these too
        sweep = load_sweep(config, out).with_overrides(overrides)
        if search != "grid":
            if sweep.search is None:
                fail(f"--search {search} needs a `search:` block in {config} (entropy_target: [LOW, HIGH], step, "
                     "objective, pruner)")
            several = [a for a, v in sweep.axes.items() if a not in ("entropy_target", "seed") and len(v) > 1]
            if several:
                fail(f"--search varies the target only: axis '{several[0]}' of {config} has several values; "
                     "give it one (or search each setting with its own file)")
            if dry_run:
                typer.echo(f"search {search} over H* in [{sweep.search.low:g}, {sweep.search.high:g}] step "
                           f"{sweep.search.step:g}: {trials} trials of one run each, seeds {sweep.axes['seed']}, "
                           f"objective {sweep.search.objective}, pruner {sweep.search.pruner}")
                return
            from aepo.rundir import interrupt_on_signals
            from aepo.sweep.scheduler import quiet_libraries
            from aepo.sweep.search import run_search

            quiet_libraries()
            try:
                with interrupt_on_signals():
                    run_search(sweep, search, trials, search_seed, out, storage=storage,
                               log=lambda m: typer.echo(m, err=True))
            except KeyboardInterrupt:
                typer.echo("interrupted: run the same command again to resume the search", err=True)
                raise typer.Exit(130)
            typer.echo(f"results: {out / 'results.parquet'}")
            return
        if dry_run:
            typer.echo(run_table(sweep))
            verl_runs = [r for r in sweep.runs if r.config.backend == "verl"]
            if verl_runs:
                from aepo.verl_backend.launch import dry_run_command

                for r in verl_runs:
                    typer.echo(f"\n# {r.run_id}\n{dry_run_command(r.config, one_line=True)}")
            return
        from aepo.sweep.scheduler import run_sweep

        try:
            df = run_sweep(sweep, config, out, storage=storage, workers=workers, retry_failed=retry_failed,
                           overrides=overrides, log=lambda m: typer.echo(m, err=True))
        except KeyboardInterrupt:
            typer.echo("interrupted: run the same command again to resume the sweep", err=True)
            raise typer.Exit(130)
    typer.echo(df[SUMMARY_COLUMNS].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    typer.echo(f"results: {out / 'results.parquet'}")
    failed = df[df.status == "failed"].run_id.tolist()
    unfinished = df[~df.status.isin(["finished", "failed"])].run_id.tolist()
    if failed:
        typer.echo(f"{len(failed)} of {len(df)} runs failed: {', '.join(failed)} "
                   "(errors in results.parquet; rerun with --retry-failed)", err=True)
    if unfinished:
        typer.echo(f"{len(unfinished)} runs not finished (held by other workers?): {', '.join(unfinished)}", err=True)
    if failed or unfinished:
        raise typer.Exit(1)


def run_table(sweep) -> str:
    """The dry-run table: one line per run with its grid point and current status."""
    from aepo.rundir import run_status

    axes = sweep.columns
    header = ["run_id", "method", *axes, "steps", "backend", "status"]
    rows = [[r.run_id, r.method, *(str(r.point.get(a, "-")) for a in axes), str(r.config.steps),
             r.config.backend, run_status(Path(r.config.out), r.config.steps)] for r in sweep.runs]
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip() for line in [header, *rows]]
    n_grid = sum(not r.baseline for r in sweep.runs)
    n_axes = 1
    for v in sweep.axes.values():
        n_axes *= len(v)
    shape = " x ".join(f"{len(v)} {a}" for a, v in sweep.axes.items())
    extra = f" + {n_grid - n_axes} at extra points" if n_grid > n_axes else ""
    lines.append(f"{len(sweep.runs)} runs: {n_axes} on the grid ({shape}){extra} + "
                 f"{len(sweep.runs) - n_grid} baseline runs ({', '.join(sweep.baselines) or 'none'}) per seed")
    return "\n".join(lines)
