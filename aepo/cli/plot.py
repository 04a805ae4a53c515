"""Figures, tables and the measured paper claims from a sweep, run directories or W&B."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from aepo.cli.common import fail, one_line_errors

def plot_command(
    sweep_dirs: Annotated[Optional[list[Path]], typer.Argument(metavar="SWEEP_DIR...", help="Sweep directories "
                                                               "(their runs/ are read) or run directories "
                                                               "(a glob: SWEEP/runs/*__s[012]); several are "
                                                               "one study.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output directory: report.md, claims.json, "
                                                "figures/*.png|pdf, tables/*.md|tex.")] = None,
    runs: Annotated[Optional[list[Path]], typer.Option("--runs", help="A run directory; repeat for "
                                                       "several (with or without SWEEP_DIR).")] = None,
    from_wandb: Annotated[Optional[str], typer.Option("--from-wandb", help="Read runs from W&B: "
                                                      "ENTITY/PROJECT or ENTITY/PROJECT/GROUP (public API).")] = None,
) -> None:
    """Write every figure (PNG, PDF), every table (Markdown, LaTeX) and a one-page report.md that
    states each paper claim C1-C8 with its measured evidence and verdict."""
    if out is None:
        fail("--out is required")
    if not sweep_dirs and not runs and not from_wandb:
        fail("give a SWEEP_DIR, --runs RUN_DIR or --from-wandb ENTITY/PROJECT(/GROUP)")
    for sweep_dir in sweep_dirs or ():
        if not sweep_dir.is_dir():
            fail(f"no sweep directory {sweep_dir}")

    from aepo.rundir import output_dir
    from analysis.load import load
    from paper_figs.report import make_report

    sources = [s for s in (" + ".join(map(str, sweep_dirs)) if sweep_dirs else None,
                           f"{len(runs)} run director{'y' if len(runs) == 1 else 'ies'}" if runs else None,
                           f"W&B {from_wandb}" if from_wandb else None) if s]
    with one_line_errors("aepo plot"):
        with output_dir(out):  # checked before any reading; removed again if still empty on failure
            frames = load(sweep_dirs or (), runs or (), from_wandb)
            written = make_report(frames, out, " + ".join(sources))
    n_fig, n_tab = len(written["figures"]), len(written["tables"])
    typer.echo(f"wrote {n_fig} figure files, {n_tab} table files and {out / 'report.md'}")
