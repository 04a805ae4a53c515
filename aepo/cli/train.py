"""Train one run with the embedded PyTorch trainer (or the verl backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from aepo.cli.common import StepProgress, crashed, fail
from aepo.config import AlgoConfig, ModelConfig, OptimConfig, RolloutConfig, RunConfig, field_help


def _h(cls, name: str) -> str:
    return field_help(cls, name)


def train_command(
    method: Annotated[Optional[str], typer.Option(help=_h(AlgoConfig, "method") + " [default: aepo]")] = None,
    model: Annotated[Optional[str], typer.Option(help=_h(ModelConfig, "name_or_path") + " [default: tiny]")] = None,
    entropy_target: Annotated[Optional[float], typer.Option(help=_h(AlgoConfig, "entropy_target"))] = None,
    alpha: Annotated[Optional[float], typer.Option(help=_h(AlgoConfig, "alpha"))] = None,
    mode: Annotated[Optional[str], typer.Option(help=_h(AlgoConfig, "mode"))] = None,
    t_high: Annotated[Optional[float], typer.Option(help=_h(AlgoConfig, "t_high"))] = None,
    t_low: Annotated[Optional[float], typer.Option(help=_h(AlgoConfig, "t_low"))] = None,
    lr: Annotated[Optional[float], typer.Option(help=_h(OptimConfig, "lr"))] = None,
    prompts_per_step: Annotated[Optional[int], typer.Option(help=_h(RolloutConfig, "prompts_per_step"))] = None,
    group_size: Annotated[Optional[int], typer.Option(help=_h(RolloutConfig, "group_size"))] = None,
    steps: Annotated[Optional[int], typer.Option(help=_h(RunConfig, "steps"))] = None,
    seed: Annotated[Optional[int], typer.Option(help=_h(RunConfig, "seed"))] = None,
    out: Annotated[Optional[Path], typer.Option(help=_h(RunConfig, "out"))] = None,
    backend: Annotated[Optional[str], typer.Option(help=_h(RunConfig, "backend"))] = None,
    wandb: Annotated[Optional[str], typer.Option(help=_h(RunConfig, "wandb"))] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML/JSON run config (sections model, data, "
                                                   "rollout, optim, algo; top-level run fields).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override any field: --set algo.t_high=1.5")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its checkpoint.")] = False,
    dry_run: Annotated[bool, typer.Option(help="--backend verl: print the verl command line and exit.")] = False,
) -> None:
    """Train one run: GRPO, AEPO or a baseline, on the tiny lab or a real model.

    Precedence: an option given here, then --set, then --config, then the defaults of
    aepo/config.py (an option left out decides nothing). A run that fails exits 1 with one line.
    """
    from aepo.config import ConfigError, load_config_file, parse_set_option
    from aepo.errors import UserError

    explicit = {
        "algo.method": method, "model.name_or_path": model, "algo.entropy_target": entropy_target,
        "algo.alpha": alpha, "algo.mode": mode, "algo.t_high": t_high, "algo.t_low": t_low, "optim.lr": lr,
        "rollout.prompts_per_step": prompts_per_step, "rollout.group_size": group_size, "steps": steps,
        "seed": seed, "out": str(out) if out else None, "backend": backend, "wandb": wandb,
    }
    cfg = RunConfig()
    try:
        cfg = RunConfig.from_dict(load_config_file(config)) if config else RunConfig()
        cfg = cfg.with_overrides(parse_set_option(set_ or []))
        cfg = cfg.with_overrides({k: v for k, v in explicit.items() if v is not None}).validate()
        if cfg.backend == "verl":
            from aepo.verl_backend import launch

            if dry_run:
                typer.echo(launch.dry_run_command(cfg))
                return
            result = launch.launch(cfg, resume=resume, log=lambda m: typer.echo(m, err=True))
        elif dry_run:
            raise ConfigError("--dry-run prints the verl command line: it needs --backend verl")
        else:
            from aepo.embedded.trainer import train
            from aepo.rundir import interrupt_on_signals

            # SIGTERM (kill, a cluster's pre-emption) as Ctrl-C: the trainer checkpoints the last whole
            # step if the signal came between steps (inside an update it keeps the last periodic one)
            with interrupt_on_signals(), StepProgress(f"{cfg.algo.method} {Path(cfg.out).name}") as progress:
                result = train(cfg, resume=resume, progress=progress, log=lambda m: typer.echo(m, err=True))
    except UserError as e:
        fail(str(e))
    except ModuleNotFoundError as e:
        fail(f"missing dependency '{e.name}'")
    except KeyboardInterrupt:
        fail(f"interrupted: run the same command with --resume to continue {cfg.out}", code=130)
    except Exception as e:  # the trainer recorded the failure in result.json before re-raising
        crashed(e, f"training {cfg.out} failed (record: {Path(cfg.out) / 'result.json'})")
    summary = {k: v for k, v in result.items() if k.startswith(("final/", "best/")) or k in ("status", "wall_time_s")}
    typer.echo(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))
    if result.get("status") != "finished":
        fail(f"run {cfg.out} {result.get('status')}: {result.get('error')}", code=1)
