"""The `aepo` command line: one module per command group, joined here."""

from __future__ import annotations

import typer

from aepo.cli import train

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Run, sweep, evaluate and analyse entropy-controlled RL fine-tuning (AEPO).")


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks of failures (or set AEPO_DEBUG=1).")) -> None:
    import os

    from aepo.cli.common import DEBUG_ENV

    if debug:
        os.environ[DEBUG_ENV] = "1"

app.command("train", help=train.__doc__)(train.train_command)

for _name in ("sweep", "eval", "plot"):
    try:
        _mod = __import__(f"aepo.cli.{_name}", fromlist=["app"])
        app.add_typer(_mod.app, name=_name)
    except ModuleNotFoundError as _e:  # a command group not built yet in this checkout
        if _e.name != f"aepo.cli.{_name}":
            raise


def main() -> None:
    app()
